// Package storage keeps the platform's objects — raw datasets, scenario
// views, products — encrypted at rest. Store is the interface, chosen by
// URL scheme (Open): file:// is the local filesystem, the embedded default
// (s3:// through MinIO comes later). Every object is sealed with a data key
// of its own in the DARE format of github.com/minio/sio (a streaming AEAD);
// the data key is kept wrapped by the master key, read from a 0600 file.
// Destroying a wrapped data key destroys the object (crypto-shredding).
package storage
