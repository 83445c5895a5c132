// Package mask turns a raw dataset into a masked one that analysts may use
// (SPEC R3): per column it drops, redacts, partially masks, pseudonymises
// with a keyed HMAC, generalises, rounds, top/bottom-codes, adds Laplace
// noise or suppresses rare categories, and it can sample rows. Which operator
// applies to which column comes from a YAML profile keyed by column class,
// identifier kind and column name; prod and dev profiles are embedded.
//
// Masking streams record batches through a pool of workers in bounded
// memory. No raw value of a masked column reaches the output, a log or an
// error message.
package mask
