package rpm

import (
	"testing"

	"pedos.dev/updates/internal/rpmver"
)

// Obsoletes tags that do not agree (a missing one, a wrong type, counts
// that differ) are read as none: they only ever excuse an update from the
// withholding check, which then stays whole.
func TestObsoletesThatDisagreeAreNone(t *testing.T) {
	names := Entry{Tag: TagObsoleteName, Type: typeStringArray, Count: 2, Data: []byte("a\x00b\x00")}
	flags := Entry{Tag: TagObsoleteFlags, Type: typeInt32, Count: 2, Data: []byte{0, 0, 0, 2, 0, 0, 0, 0}}
	versions := Entry{Tag: TagObsoleteVersion, Type: typeStringArray, Count: 2, Data: []byte("1.0\x00\x00")}
	if got := readObsoletes(&Header{Entries: []Entry{names, flags, versions}}); len(got) != 2 ||
		got[0] != (Obsolete{Name: "a", Flags: 2, Version: "1.0"}) || got[1] != (Obsolete{Name: "b"}) {
		t.Fatalf("agreeing tags read as %+v", got)
	}
	oneFlag := flags
	oneFlag.Count, oneFlag.Data = 1, flags.Data[:4]
	flagsAsString := flags
	flagsAsString.Type = typeStringArray
	oneName := Entry{Tag: TagObsoleteName, Type: typeString, Count: 1, Data: []byte("a\x00")}
	oneVersion := Entry{Tag: TagObsoleteVersion, Type: typeString, Count: 1, Data: []byte("1.0\x00")}
	oneArray := func(e Entry) Entry { e.Type = typeStringArray; return e }
	if got := readObsoletes(&Header{Entries: []Entry{oneArray(oneName), oneFlag, oneArray(oneVersion)}}); len(got) != 1 {
		t.Fatalf("one agreeing Obsoletes read as %+v", got)
	}
	for name, entries := range map[string][]Entry{
		"no versions":          {names, flags},
		"no flags":             {names, versions},
		"no names":             {flags, versions},
		"counts differ":        {names, oneFlag, versions},
		"flags not numbers":    {names, flagsAsString, versions},
		"name not an array":    {oneName, oneFlag, oneArray(oneVersion)},
		"version not an array": {oneArray(oneName), oneFlag, oneVersion},
		// Not what the header parser makes: a count its data does not hold.
		"short data": {names, flags, {Tag: TagObsoleteVersion, Type: typeStringArray, Count: 2, Data: []byte("1.0\x00")}},
		"no data":    {names, flags, {Tag: TagObsoleteVersion, Type: typeStringArray, Count: 2}},
	} {
		if got := readObsoletes(&Header{Entries: entries}); got != nil {
			t.Errorf("%s: read as %+v", name, got)
		}
	}
}

// An Obsoletes covers only the packages of its own name: a range alone
// would let any package excuse the withholding of any other.
func TestObsoleteCoversOnlyItsName(t *testing.T) {
	evr := rpmver.EVR{Version: "1.0", Release: "1"}
	o := Obsolete{Name: "hello", Flags: rpmver.SenseLess, Version: "2.0"}
	if !o.Covers("hello", evr) || o.Covers("openssl", evr) || (Obsolete{Name: "hello"}).Covers("openssl", evr) {
		t.Errorf("%+v covers hello %t, openssl %t; want only hello", o, o.Covers("hello", evr), o.Covers("openssl", evr))
	}
}
