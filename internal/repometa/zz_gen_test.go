package repometa

import (
	"crypto"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestZZGen(t *testing.T) {
	dir := "/tmp/bench"
	primary := filepath.Join(dir, "primary--updates.xml")
	size, sum := writeBenchPrimary(t, primary)
	repomd := fmt.Appendf(nil, `<repomd xmlns="http://linux.duke.edu/metadata/repo"><revision>%d</revision>
<data type="primary"><open-checksum type="sha256">%x</open-checksum><location href="repodata/primary.xml.zst"/>
<timestamp>%d</timestamp><open-size>%d</open-size></data></repomd>`, day0.Unix(), sum, day0.Unix(), size)
	pub := newPublisher(t, nil)
	os.WriteFile(filepath.Join(dir, "repomd--updates.xml"), repomd, 0o644)
	os.WriteFile(filepath.Join(dir, "repomd--updates.xml.asc"), pub.sign(t, repomd, day0, crypto.SHA256), 0o644)
	data, _ := os.ReadFile(writePublicKey(t, pub.entity))
	os.WriteFile(filepath.Join(dir, "key.asc"), data, 0o644)
}
