// Package demodata generates deterministic synthetic datasets for demos,
// tests and benchmarks: residents (resident IDs with valid check characters,
// mobiles, UnionPay cards with Luhn digits, names, birth dates consistent with
// the IDs, districts, education, occupation, income, diagnosis, insurance)
// and enterprises (unified social credit codes with valid check characters,
// names, legal representatives, industry, district, capital, staff, tax).
// Every person and company is invented.
package demodata
