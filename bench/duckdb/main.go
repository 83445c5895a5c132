// Command duckdb-mask does, in DuckDB's SQL, the masking bench/mask.sh
// measures Sluice doing: the residents CSV to Parquet with the three
// identifier columns as salted SHA-256, the birth date as its year and the
// district code as its four-digit prefix, every other column as it is. It
// is its own module so that DuckDB (cgo) never enters Sluice's build. The
// hashes are cut to Sluice's pseudonym form (psn_ and 24 hex digits), so
// that both write the same bytes.
//
// usage: duckdb-mask SOURCE.csv SALT OUT.parquet
package main

import (
	"database/sql"
	"fmt"
	"os"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: duckdb-mask SOURCE.csv SALT OUT.parquet")
		os.Exit(2)
	}
	src, salt, out := os.Args[1], os.Args[2], os.Args[3]
	db, err := sql.Open("duckdb", "")
	if err != nil {
		fail(err)
	}
	defer db.Close()
	if _, err := db.Exec(`SET threads = 2`); err != nil {
		fail(err)
	}
	quote := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	q := fmt.Sprintf(`COPY (
		SELECT 'psn_' || substr(sha256(%[2]s || person_id), 1, 24) AS person_id,
		       name,
		       'psn_' || substr(sha256(%[2]s || phone), 1, 24) AS phone,
		       'psn_' || substr(sha256(%[2]s || bank_card), 1, 24) AS bank_card,
		       gender,
		       year(birth_date) AS birth_year,
		       substr(district_code, 1, 4) AS district_code,
		       * EXCLUDE (person_id, name, phone, bank_card, gender, birth_date, district_code)
		FROM read_csv(%[1]s, header = true, all_varchar = false,
		              types = {'person_id': 'VARCHAR', 'phone': 'VARCHAR', 'bank_card': 'VARCHAR', 'district_code': 'VARCHAR', 'birth_date': 'DATE'})
	) TO %[3]s (FORMAT parquet)`, quote(src), quote(salt), quote(out))
	if _, err := db.Exec(q); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "duckdb-mask:", err)
	os.Exit(1)
}
