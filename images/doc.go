// Package images builds job images offline and imports them into
// containerd. Each image is a directory here holding image.yaml: a builder
// (busybox-static: Debian's static busybox; debootstrap: a Debian minbase
// root with the listed packages), the command, environment and working
// directory. Build turns a definition into an OCI image tarball with
// go-containerregistry, cached by the definition's content outside the
// repository; Import loads a tarball (built here or elsewhere) into
// containerd under the image's name and unpacks it. No registry is used:
// production platforms are air-gapped.
package images
