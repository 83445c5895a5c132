// Package pii recognises personal and enterprise identifiers by structure,
// not by pattern alone: Chinese resident IDs with their MOD 11-2 check
// character, plausible birth date and region; unified social credit codes
// (GB 32100) with their check character; mainland mobile numbers; bank cards
// with the Luhn check; e-mail addresses; Chinese personal names (surname list
// and length); passport numbers. The same detectors serve dataset
// classification and the egress gate.
package pii
