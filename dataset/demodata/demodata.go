package demodata

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/sluicehq/sluice/dataset"
	"github.com/sluicehq/sluice/dataset/pii"
)

const batchRows = 32 * 1024

type district struct {
	code, name string
	weight     int
}

// districts are real county-level divisions (GB/T 2260) with uneven weights,
// so that some are small.
var districts = []district{
	{"110101", "东城区", 30}, {"110102", "西城区", 30}, {"110105", "朝阳区", 60}, {"110108", "海淀区", 55},
	{"310101", "黄浦区", 25}, {"310104", "徐汇区", 35}, {"310115", "浦东新区", 80}, {"320102", "玄武区", 20},
	{"330106", "西湖区", 30}, {"440103", "荔湾区", 25}, {"440106", "天河区", 45}, {"440305", "南山区", 45},
	{"510104", "锦江区", 25}, {"510107", "武侯区", 35}, {"420106", "武昌区", 30}, {"410105", "金水区", 40},
	{"410102", "中原区", 25}, {"130102", "长安区", 20}, {"130105", "新华区", 15}, {"370102", "历下区", 20},
	{"500103", "渝中区", 20}, {"610113", "雁塔区", 35}, {"350102", "鼓楼区", 15}, {"120101", "和平区", 10},
	{"150102", "新城区", 4}, {"630102", "城东区", 3}, {"540102", "城关区", 2},
}

const surnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严"
const givenChars = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国文辉鹏飞宇浩然欣怡子涵梓萱雨轩晨阳佳琪思远志海燕波琳婷雪梅慧颖博凯俊峰斌亮"

var (
	educations      = weighted{{"小学", 10}, {"初中", 25}, {"高中", 25}, {"大专", 15}, {"本科", 18}, {"硕士", 6}, {"博士", 1}}
	occupations     = weighted{{"制造业工人", 20}, {"服务业", 20}, {"医护", 6}, {"教师", 7}, {"公务员", 5}, {"个体经营", 12}, {"农业", 10}, {"IT技术", 8}, {"金融", 4}, {"退休", 8}}
	diagnoses       = weighted{{"Z00", 50}, {"I10", 12}, {"E11", 8}, {"J06", 10}, {"K29", 6}, {"M54", 6}, {"F32", 3}, {"N18", 2}, {"C34", 1}, {"B20", 1}, {"G35", 1}}
	industries      = weighted{{"制造业", 25}, {"批发和零售业", 20}, {"信息技术服务业", 12}, {"建筑业", 10}, {"住宿和餐饮业", 10}, {"金融业", 4}, {"科学研究和技术服务业", 6}, {"交通运输业", 8}, {"农林牧渔业", 5}}
	nameWords       = []string{"华", "信", "达", "通", "恒", "泰", "盛", "安", "丰", "瑞", "鑫", "宏", "远", "创", "新", "锦", "源", "晟", "卓", "越"}
	bizWords        = []string{"科技", "贸易", "建设", "实业", "餐饮", "物流", "咨询", "电子", "医药", "食品"}
	districtWeights = func() []int {
		w := make([]int, len(districts))
		for i, d := range districts {
			w[i] = d.weight
		}
		return w
	}()
	surnameRunes = []rune(surnames)
	givenRunes   = []rune(givenChars)
)

type choice struct {
	v string
	w int
}

type weighted []choice

func (w weighted) pick(r *rand.Rand) string {
	weights := make([]int, len(w))
	for i, c := range w {
		weights[i] = c.w
	}
	return w[pickIndex(r, weights)].v
}

// pickIndex draws an index with probability proportional to its weight.
func pickIndex(r *rand.Rand, weights []int) int {
	total := 0
	for _, w := range weights {
		total += w
	}
	n := r.IntN(total)
	for i, w := range weights {
		if n < w {
			return i
		}
		n -= w
	}
	return len(weights) - 1
}

// ResidentsSchema is the schema of the residents dataset.
var ResidentsSchema = arrow.NewSchema([]arrow.Field{
	{Name: "person_id", Type: arrow.BinaryTypes.String},
	{Name: "name", Type: arrow.BinaryTypes.String},
	{Name: "phone", Type: arrow.BinaryTypes.String},
	{Name: "bank_card", Type: arrow.BinaryTypes.String},
	{Name: "gender", Type: arrow.BinaryTypes.String},
	{Name: "birth_date", Type: arrow.FixedWidthTypes.Date32},
	{Name: "district_code", Type: arrow.BinaryTypes.String},
	{Name: "district", Type: arrow.BinaryTypes.String},
	{Name: "education", Type: arrow.BinaryTypes.String},
	{Name: "occupation", Type: arrow.BinaryTypes.String},
	{Name: "monthly_income", Type: arrow.PrimitiveTypes.Int64},
	{Name: "diagnosis", Type: arrow.BinaryTypes.String},
	{Name: "insurance_paid", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// EnterprisesSchema is the schema of the enterprises dataset.
var EnterprisesSchema = arrow.NewSchema([]arrow.Field{
	{Name: "credit_code", Type: arrow.BinaryTypes.String},
	{Name: "company_name", Type: arrow.BinaryTypes.String},
	{Name: "legal_rep", Type: arrow.BinaryTypes.String},
	{Name: "legal_rep_id", Type: arrow.BinaryTypes.String},
	{Name: "industry", Type: arrow.BinaryTypes.String},
	{Name: "district_code", Type: arrow.BinaryTypes.String},
	{Name: "registered_capital", Type: arrow.PrimitiveTypes.Int64},
	{Name: "employees", Type: arrow.PrimitiveTypes.Int64},
	{Name: "tax_paid", Type: arrow.PrimitiveTypes.Float64},
}, nil)

// Files lists what Write produces for a format.
func Files(dir string, format dataset.Format) (residents, enterprises string) {
	ext := "." + string(format)
	return filepath.Join(dir, "residents"+ext), filepath.Join(dir, "enterprises"+ext)
}

// Write generates rows residents and rows/10 (at least 1) enterprises into
// dir, deterministically for a seed.
func Write(ctx context.Context, dir string, rows int, seed uint64, format dataset.Format) error {
	if rows < 1 {
		return fmt.Errorf("rows must be at least 1: %w", dataset.ErrInvalidInput)
	}
	rpath, epath := Files(dir, format)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	if err := writeBatches(ctx, rpath, ResidentsSchema, rows, func(b *array.RecordBuilder) { resident(r, b) }); err != nil {
		return err
	}
	e := rand.New(rand.NewPCG(seed, 0xe7e))
	return writeBatches(ctx, epath, EnterprisesSchema, max(1, rows/10), func(b *array.RecordBuilder) { enterprise(e, b) })
}

func writeBatches(ctx context.Context, path string, schema *arrow.Schema, rows int, row func(*array.RecordBuilder)) error {
	w, err := dataset.Create(path, schema)
	if err != nil {
		return err
	}
	defer w.Abort()
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for done := 0; done < rows; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(batchRows, rows-done)
		for i := 0; i < n; i++ {
			row(b)
		}
		rec := b.NewRecord()
		err := w.Write(rec)
		rec.Release()
		if err != nil {
			return err
		}
		done += n
	}
	return w.Commit()
}

var epoch = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)

// ResidentID returns a valid 18-character resident ID.
func ResidentID(r *rand.Rand, region string, birth time.Time, male bool) string {
	seq := r.IntN(500) * 2
	if male {
		seq++
	}
	first := fmt.Sprintf("%s%s%03d", region, birth.Format("20060102"), seq)
	return first + string(pii.ResidentIDCheck(first))
}

func resident(r *rand.Rand, b *array.RecordBuilder) {
	d := districts[pickIndex(r, districtWeights)]
	birth := time.Date(1940+r.IntN(66), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	male := r.IntN(2) == 0
	id := ResidentID(r, d.code, birth, male)
	gender := "女"
	if male {
		gender = "男"
	}
	income := int64(math.Round(math.Exp(8.6+0.45*r.NormFloat64())/10) * 10)
	b.Field(0).(*array.StringBuilder).Append(id)
	b.Field(1).(*array.StringBuilder).Append(personName(r))
	b.Field(2).(*array.StringBuilder).Append(mobile(r))
	b.Field(3).(*array.StringBuilder).Append(unionPay(r))
	b.Field(4).(*array.StringBuilder).Append(gender)
	b.Field(5).(*array.Date32Builder).Append(arrow.Date32(birth.Sub(epoch).Hours() / 24))
	b.Field(6).(*array.StringBuilder).Append(d.code)
	b.Field(7).(*array.StringBuilder).Append(d.name)
	b.Field(8).(*array.StringBuilder).Append(educations.pick(r))
	b.Field(9).(*array.StringBuilder).Append(occupations.pick(r))
	b.Field(10).(*array.Int64Builder).Append(income)
	b.Field(11).(*array.StringBuilder).Append(diagnoses.pick(r))
	b.Field(12).(*array.Float64Builder).Append(math.Round(float64(income)*(0.06+0.04*r.Float64())*100) / 100)
}

func enterprise(r *rand.Rand, b *array.RecordBuilder) {
	d := districts[pickIndex(r, districtWeights)]
	industry := industries.pick(r)
	capital := int64(math.Round(math.Exp(5+1.5*r.NormFloat64()))) + 1 // 万元
	staff := int64(math.Round(math.Exp(2.5+1.3*r.NormFloat64()))) + 1
	birth := time.Date(1950+r.IntN(50), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	name := d.name[:len(d.name)-len("区")] + pickRune(r, nameWords) + pickRune(r, nameWords) + pickRune(r, bizWords) + "有限公司"
	b.Field(0).(*array.StringBuilder).Append(creditCode(r, d.code))
	b.Field(1).(*array.StringBuilder).Append(name)
	b.Field(2).(*array.StringBuilder).Append(personName(r))
	b.Field(3).(*array.StringBuilder).Append(ResidentID(r, d.code, birth, r.IntN(2) == 0))
	b.Field(4).(*array.StringBuilder).Append(industry)
	b.Field(5).(*array.StringBuilder).Append(d.code)
	b.Field(6).(*array.Int64Builder).Append(capital)
	b.Field(7).(*array.Int64Builder).Append(staff)
	b.Field(8).(*array.Float64Builder).Append(math.Round(float64(capital)*r.Float64()*80) / 100)
}

func pickRune(r *rand.Rand, words []string) string { return words[r.IntN(len(words))] }

func personName(r *rand.Rand) string {
	s, g := surnameRunes, givenRunes
	name := string(s[int(math.Abs(r.NormFloat64())*float64(len(s))/3)%len(s)]) + string(g[r.IntN(len(g))])
	if r.IntN(3) > 0 {
		name += string(g[r.IntN(len(g))])
	}
	return name
}

func mobile(r *rand.Rand) string {
	prefixes := []string{"130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "157", "158", "159", "166", "176", "177", "180", "181", "186", "187", "188", "189", "199"}
	return fmt.Sprintf("%s%08d", prefixes[r.IntN(len(prefixes))], r.IntN(100000000))
}

// unionPay returns a 16- to 19-digit UnionPay card number with a Luhn digit.
func unionPay(r *rand.Rand) string {
	n := 16 + r.IntN(4)
	buf := make([]byte, n-1, n)
	buf[0], buf[1] = '6', '2'
	for i := 2; i < n-1; i++ {
		buf[i] = byte('0' + r.IntN(10))
	}
	return string(append(buf, pii.LuhnCheckDigit(string(buf))))
}

// creditCode returns a unified social credit code for an enterprise (9,
// type 1) registered in region, with a valid check character.
func creditCode(r *rand.Rand, region string) string {
	const alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
	buf := []byte("91" + region)
	for i := 0; i < 9; i++ {
		buf = append(buf, alphabet[r.IntN(len(alphabet))])
	}
	return string(append(buf, pii.CreditCodeCheck(string(buf))))
}
