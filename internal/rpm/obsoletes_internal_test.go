package rpm

import "testing"

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
	for name, entries := range map[string][]Entry{
		"no versions":       {names, flags},
		"no flags":          {names, versions},
		"no names":          {flags, versions},
		"counts differ":     {names, oneFlag, versions},
		"flags not numbers": {names, flagsAsString, versions},
		// Not what the header parser makes: a count its data does not hold.
		"short data": {names, flags, {Tag: TagObsoleteVersion, Type: typeStringArray, Count: 2, Data: []byte("1.0\x00")}},
		"no data":    {names, flags, {Tag: TagObsoleteVersion, Type: typeStringArray, Count: 2}},
	} {
		if got := readObsoletes(&Header{Entries: entries}); got != nil {
			t.Errorf("%s: read as %+v", name, got)
		}
	}
}
