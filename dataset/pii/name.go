package pii

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// singleSurnames holds the common single-character Chinese surnames (the
// first few hundred by population, which cover well over 95% of people).
const singleSurnames = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉冶斯元束檀衣信展阴昝智幸奉植衡富尧闭由"

// compoundSurnames are two-character surnames.
var compoundSurnames = []string{
	"欧阳", "司马", "诸葛", "上官", "司徒", "东方", "皇甫", "慕容", "令狐", "夏侯",
	"尉迟", "长孙", "宇文", "公孙", "轩辕", "端木", "独孤", "南宫", "西门", "闻人",
}

var surnameSet = func() map[rune]bool {
	m := make(map[rune]bool, utf8.RuneCountInString(singleSurnames))
	for _, r := range singleSurnames {
		m[r] = true
	}
	return m
}()

// nonNameEndings are last characters that mark a place, an organisation, a
// grade or a job rather than a person ("金水区", "高中", "医院"). Names ending
// in these characters exist but are rare; the classifier looks at whole
// columns, so a few misses do not change a verdict.
const nonNameEndings = "区县市省镇乡村路街道州盟旗局厅部委院校所司行社会店厂场站馆处科室组队团中学级业工员师生人民族病症炎"

// IsPersonName reports whether s looks like a Chinese personal name: two to
// four Han characters (three to five with a compound surname) beginning with
// a known surname and not ending like a place or organisation.
func IsPersonName(s string) bool {
	n := utf8.RuneCountInString(s)
	if n < 2 || n > 5 {
		return false
	}
	for _, r := range s {
		if !unicode.Is(unicode.Han, r) {
			return false
		}
	}
	last, _ := utf8.DecodeLastRuneInString(s)
	if strings.ContainsRune(nonNameEndings, last) {
		return false
	}
	for _, c := range compoundSurnames {
		if strings.HasPrefix(s, c) {
			return n >= 3
		}
	}
	first, _ := utf8.DecodeRuneInString(s)
	return surnameSet[first] && n <= 4
}

// orgSuffixes end the registered names of Chinese organisations.
var orgSuffixes = []string{"有限公司", "有限责任公司", "股份公司", "集团", "公司", "合作社", "事务所", "研究院", "医院", "学校", "大学", "中心", "协会", "基金会", "商行", "工作室", "厂", "店"}

// IsOrgName reports whether s looks like a Chinese organisation name: at
// least four characters ending in a registered-entity suffix.
func IsOrgName(s string) bool {
	if utf8.RuneCountInString(s) < 4 {
		return false
	}
	for _, suf := range orgSuffixes {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	return false
}
