package attack

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"pedos.dev/updates/internal/qfile"
)

// marker is in every invalid name the stream rows make up: it must never
// appear in dom0's output or logs, raw or escaped. (Valid names may be
// repeated: docs/qfile.md, and the rows use "evil…" for those.)
const marker = "zq1x"

// junk is a payload that is not a package.
var junk = []byte("not an rpm\n")

// unpackerRefuses is a stream case that the sandboxed unpacker must refuse
// with errno (its symbolic name, as dom0 reports it).
func unpackerRefuses(label, errno string, stream *Stream) streamCase {
	return streamCase{stream: stream.Bytes(), attempt: attempt{label: label,
		want: []string{"the unpacker refused the stream", "(" + errno + ")"}, untrusted: []string{marker}}}
}

func fileStream(name string) *Stream { return new(Stream).File(name, junk).End() }

// header is a regular file's header with a name of n bytes and filelen.
func header(n int, filelen uint64) qfile.Header {
	return qfile.Header{NameLen: uint32(n), Mode: modeRegular, FileLen: filelen}
}

var streamRows = []Row{
	{ID: "S1", Group: "stream", Attack: "names with a .. component, absolute, //, a . component, a trailing /", run: func(e *Env) (string, error) {
		var cases []streamCase
		for _, name := range []string{"../" + marker + ".rpm", "/tmp/" + marker + ".rpm", "a//" + marker + ".rpm", "./" + marker + ".rpm", marker + ".rpm/"} {
			cases = append(cases, unpackerRefuses(fmt.Sprintf("%q", name), "EILSEQ", fileStream(name)))
		}
		return e.refusedAll(cases)
	}},
	{ID: "S2", Group: "stream", Attack: "names with control characters, invalid UTF-8, a bidi override, a newline (log injection)", run: func(e *Env) (string, error) {
		names := map[string]string{
			"escape sequence": marker + "\x1b[31mred.rpm",
			"invalid UTF-8":   marker + "\xff\xfe.rpm",
			"bidi override":   marker + "\u202emp4.rpm",
			"newline":         marker + ".rpm\npedos-receive-updates: delivery accepted and published",
		}
		var cases []streamCase
		for label, name := range names {
			cases = append(cases, unpackerRefuses(label, "EILSEQ", fileStream(name)))
		}
		sort.Slice(cases, func(i, j int) bool { return cases[i].label < cases[j].label })
		return e.refusedAll(cases)
	}},
	{ID: "S3", Group: "stream", Attack: "namelen 0 in the middle, namelen > 16383, a name without NUL, an embedded NUL", run: func(e *Env) (string, error) {
		// The spec tolerates a missing final NUL and cuts a name at an
		// embedded NUL (spec qfile.md): the file then arrives under a
		// valid name, and dom0 refuses it as a package.
		notAPackage := []string{"failed verification", "evil.rpm"}
		return e.refusedAll([]streamCase{
			unpackerRefuses("namelen 0 with a file's mode and length", "EINVAL",
				new(Stream).File("a.rpm", junk).Header(qfile.Header{Mode: modeRegular, FileLen: uint64(len(junk))}).Raw(junk).End()),
			unpackerRefuses("namelen 16384", "ENAMETOOLONG",
				new(Stream).Header(header(qfile.MaxNameLen+1, 0)).Raw([]byte(strings.Repeat(marker, qfile.MaxNameLen/4+1))).End()),
			{stream: new(Stream).Header(header(8, uint64(len(junk)))).Raw([]byte("evil.rpm")).Raw(junk).End().Bytes(),
				attempt: attempt{label: "name without NUL (taken as evil.rpm)", want: notAPackage}},
			{stream: fileStream("evil.rpm\x00" + marker + ".rpm").Bytes(),
				attempt: attempt{label: "embedded NUL (cut to evil.rpm)", want: notAPackage, untrusted: []string{marker}}},
		})
	}},
	{ID: "S4", Group: "stream", Attack: "a directory, symlink, FIFO, character device or socket entry", run: func(e *Env) (string, error) {
		var cases []streamCase
		for _, c := range []struct {
			label string
			mode  uint32
			data  []byte
		}{
			{"directory", modeDir, nil},
			{"symlink", modeSymlink, []byte("/etc/shadow")},
			{"FIFO", 0o010644, nil},
			{"character device", 0o020644, nil},
			{"socket", 0o140644, nil},
		} {
			cases = append(cases, unpackerRefuses(c.label, "EINVAL", new(Stream).Entry(c.mode, "evil", c.data).End()))
		}
		return e.refusedAll(cases)
	}},
	{ID: "S5", Group: "stream", Attack: "a symlink to /etc, then a file through it", run: func(e *Env) (string, error) {
		return e.refusedAll([]streamCase{
			unpackerRefuses("link then file", "EINVAL",
				new(Stream).Entry(modeSymlink, "etc", []byte("/etc")).File("etc/pedos/updates.conf", []byte("updatevm = evil\n")).End()),
			unpackerRefuses("a file below a name that is not a directory", "ENOENT",
				new(Stream).File("dir/evil.rpm", junk).End()),
		})
	}},
	{ID: "S6", Group: "stream", Attack: "filelen larger than the data, a stream ending inside a header or a name", run: func(e *Env) (string, error) {
		full := new(Stream).File("evil.rpm", junk).Bytes()
		// A stream that ends inside a name or a payload is the unpacker's
		// "legal EOF" status; dom0 must still name the cause.
		truncated := []string{"truncat", "ended inside", "end of file", "EOF"}
		return e.refusedAll([]streamCase{
			{stream: new(Stream).Header(header(9, 1<<20)).Raw([]byte("evil.rpm\x00")).Raw(junk).Bytes(),
				attempt: attempt{label: "filelen 1 MiB, 11 bytes sent", want: []string{"the unpacker refused the stream"}, wantAny: truncated}},
			unpackerRefuses("EOF inside a header", "EREMOTEIO", new(Stream).Raw(full[:20])),
			{stream: full[:qfile.HeaderSize+3],
				attempt: attempt{label: "EOF inside a name", want: []string{"the unpacker refused the stream"}, wantAny: truncated}},
		})
	}},
	{ID: "S7", Group: "stream", Attack: "no end marker (EOF after the last file)", run: func(e *Env) (string, error) {
		return e.refusedAll([]streamCase{unpackerRefuses("no end marker", "EREMOTEIO", new(Stream).File("evil.rpm", junk))})
	}},
	{ID: "S8", Group: "stream", Attack: "over the byte limit, over the file-count limit, a single 5 GiB filelen", run: func(e *Env) (string, error) {
		if err := e.setConf("max_bytes", "64K", "max_files", "3"); err != nil {
			return "", err
		}
		many := new(Stream)
		for i := range 4 {
			many.File(fmt.Sprintf("evil-%d.rpm", i), junk)
		}
		summary, err := e.refusedAll([]streamCase{
			unpackerRefuses("100 KiB over max_bytes 64K", "EDQUOT", new(Stream).File("evil.rpm", make([]byte, 100<<10)).End()),
			unpackerRefuses("4 files over max_files 3", "EDQUOT", many.End()),
			unpackerRefuses("filelen 5 GiB", "EDQUOT", new(Stream).Header(header(9, 5<<30)).Raw([]byte("evil.rpm\x00")).Raw(junk)),
		})
		if err != nil {
			return "", err
		}
		if err := e.deliverFiles(map[string][]byte{"big-1-1.noarch.rpm": make([]byte, 4<<20)}); err != nil {
			return "", err
		}
		// The refusal names the limits, so the administrator knows which to raise.
		more, err := e.promptRefusal("4 MiB from the real qfile-agent over max_bytes 64K", "(EDQUOT)", "at most 3 files (max_files)", "max_bytes (65536)")
		return summary + "; " + more, err
	}},
	{ID: "S9", Group: "stream", Attack: "the same name twice", run: func(e *Env) (string, error) {
		return e.refusedAll([]streamCase{unpackerRefuses("same name twice", "EEXIST",
			new(Stream).File("evil.rpm", junk).File("evil.rpm", junk).End())})
	}},
	{ID: "S10", Group: "stream", Attack: "nanoseconds ≥ 10^9; setuid and world-writable mode bits", run: runS10},
	{ID: "S11", Group: "stream", Attack: "an endless slow stream (slowloris)", run: runS11},
	{ID: "S12", Group: "stream", Attack: "garbage after the end marker", run: func(e *Env) (string, error) {
		return e.refusedAll([]streamCase{unpackerRefuses("garbage after the end marker", "EPROTO",
			new(Stream).File("evil.rpm", junk).End().Raw([]byte(marker+" trailing garbage")))})
	}},
	{ID: "S13", Group: "stream", Attack: "the staging file system fills up during the unpack (ENOSPC)", run: runS13},
}

// runS10: a header with nanoseconds out of range is refused; a valid,
// signed package sent with mode 06777 is accepted, and what dom0 publishes
// has no setuid, setgid or group/other write bit.
func runS10(e *Env) (string, error) {
	ns := header(9, uint64(len(junk)))
	ns.MtimeNsec = 1_000_000_000
	summary, err := e.refusedAll([]streamCase{unpackerRefuses("mtime_nsec 10^9", "EINVAL",
		new(Stream).Header(ns).Raw([]byte("evil.rpm\x00")).Raw(junk).End())})
	if err != nil {
		return "", err
	}
	d, err := e.currentDelivery("hello-1.0-1.noarch.rpm")
	if err != nil {
		return "", err
	}
	s := new(Stream)
	for _, f := range d {
		mode := uint32(modeRegular)
		if strings.HasSuffix(f.name, ".rpm") {
			mode = qfile.ModeRegular | 0o6777
		}
		s.Entry(mode, f.name, f.data)
	}
	if err := e.deliverStream(s.End().Bytes()); err != nil {
		return "", err
	}
	if _, err := e.accepted("--downloadonly"); err != nil {
		return "", fmt.Errorf("a valid package sent with mode 06777: %w", err)
	}
	bad, err := e.unsafeModes()
	if err != nil {
		return "", err
	}
	if len(bad) > 0 {
		return "", fmt.Errorf("setuid or writable files in dom0's cached repository after the delivery: %v", bad)
	}
	return summary + "; a valid package sent with mode 06777 is published without setuid, setgid or group/other write bits", nil
}

// runS11: the attacker sends a header and three bytes of the name, then
// nothing, keeping the connection open. With receive_timeout = 3s, dom0 must
// end the receive at its deadline and say so.
func runS11(e *Env) (string, error) {
	if err := e.setConf("receive_timeout", "3s"); err != nil {
		return "", err
	}
	slow := `#!/bin/sh
head -c 35 /root/attack/stream
exec sleep 60
`
	stream := new(Stream).File(marker+".rpm", junk).End().Bytes()
	if err := e.installAttacker(slow, func() error { return e.writeVM(attackDir+"/stream", stream, 0o644) }); err != nil {
		return "", err
	}
	// The receive and the front end share the deadline, so the run ends
	// either with the receive's result (exit 1) or with the front end's
	// own deadline (125); either way the cause must be named.
	start := time.Now()
	u, err := e.refused(attempt{label: "slow stream", exit: -1, untrusted: []string{marker},
		wantAny: []string{"ETIMEDOUT", "deadline", "timed out", "expired"}})
	took := time.Since(start)
	if took > 30*time.Second {
		return "", fmt.Errorf("the receive ended after %s, not at its 3 s deadline (%s)", took.Round(time.Second), u.summary())
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("the receive ended at its deadline after %.1f s (receive_timeout 3s), exit %d; dom0 unchanged", took.Seconds(), u.Exit), nil
}

// runS13: dom0's staging directory is a 4 MiB tmpfs (mounted in dom0's
// own mount namespace). The attacker sends 1.4 MiB of a 1.5 MiB package,
// pauses until something else in dom0 has filled the file system (the
// suite tells it so with the file filled in its attack directory), then
// sends the rest. dom0 must refuse with ENOSPC.
func runS13(e *Env) (string, error) {
	const staging = "/var/lib/PedOS/staging"
	// The receive makes the directory at its first delivery; S13 may be the
	// lab's first row.
	if _, err := e.mustExec("dom0", "sh", "-c", "mkdir -p -m 0711 "+staging+" && mount -t tmpfs -o size=4m,mode=0711 pedos-attack-s13 "+staging); err != nil {
		return "", err
	}
	e.undo = append(e.undo, func() error { _, err := e.mustExec("dom0", "umount", staging); return err })
	pausing := `#!/bin/sh
head -c 1400000 /root/attack/stream
i=0; until [ -e /root/attack/filled ] || [ $i -ge 1200 ]; do sleep 0.05; i=$((i+1)); done
tail -c +1400001 /root/attack/stream
exec >&-
exec cat >/dev/null
`
	stream := new(Stream).File("big-1-1.noarch.rpm", make([]byte, 1500_000)).End().Bytes()
	if err := e.installAttacker(pausing, func() error { return e.writeVM(attackDir+"/stream", stream, 0o644) }); err != nil {
		return "", err
	}
	filled := make(chan error, 1)
	go func() {
		_, err := e.mustExec("dom0", "sh", "-c", "until [ -n \"$(ls "+staging+")\" ]; do sleep 0.02; done; sleep 0.5; "+
			"dd if=/dev/zero of="+staging+"/.filler bs=64k 2>/dev/null; true")
		if err == nil {
			err = e.writeVM(attackDir+"/filled", nil, 0o644)
		}
		filled <- err
	}()
	u, err := e.refused(attempt{label: "file system filled during the unpack", want: []string{"dom0's disk is full: the staging directory", "(ENOSPC)"}})
	if ferr := <-filled; err == nil {
		err = ferr
	}
	if _, rerr := e.mustExec("dom0", "rm", "-f", staging+"/.filler"); err == nil {
		err = rerr
	}
	if err != nil {
		return "", err
	}
	return "refused with ENOSPC: " + clip(u.Report.Result.Error, 100) + "; dom0 unchanged", nil
}

// promptRefusal runs an update that dom0 must refuse with each of want (the
// first, the errno, is named in the summary), and says how; a refusal
// that lasts until dom0's deadline is a failure, since the person waits
// that long (receive_timeout 20s here, 1 h by default).
func (e *Env) promptRefusal(label string, want ...string) (string, error) {
	if err := e.setConf("receive_timeout", "20s"); err != nil {
		return "", err
	}
	start := time.Now()
	u, err := e.refused(attempt{label: label, want: append([]string{"the unpacker refused the stream"}, want...)})
	took := time.Since(start)
	if took > 15*time.Second {
		return "", fmt.Errorf("%s: dom0 refused at once, but the update ended only after %.0f s, at dom0's deadline: the UpdateVM's qrexec-client-vm kept the call open while qfile-agent was blocked writing (%s; %v)", label, took.Seconds(), u.summary(), err)
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s: refused %s in %.1f s", label, want[0], took.Seconds()), nil
}
