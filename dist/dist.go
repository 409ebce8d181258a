// Package dist holds the configuration files the project ships, so that the
// lab and the packages install the very same files (see dom0/).
package dist

import "embed"

// Dom0 is dom0's shipped configuration, rooted at dom0/ (etc/pedos/…).
//
//go:embed dom0
var Dom0 embed.FS
