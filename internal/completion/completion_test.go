package completion

import (
	"bytes"
	"strings"
	"testing"
)

var tree = []Command{
	{Name: "serve", Summary: "run", Flags: []Flag{{Name: "listen", Usage: "address", TakesValue: true}}},
	{Name: "keys", Summary: "keys", Subcommands: []Command{
		{Name: "show", Summary: "print the keys", Flags: []Flag{{Name: "master", Usage: "include the master key"}, {Name: "value", Usage: "it's one key", TakesValue: true}}},
	}},
}

func TestWrite(t *testing.T) {
	for _, shell := range Shells {
		var b bytes.Buffer
		if err := Write(&b, shell, "gh", tree); err != nil {
			t.Fatalf("%s: %v", shell, err)
		}
		for _, want := range []string{"serve", "keys", "show", "master", "value"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s script lacks %s", shell, want)
			}
		}
	}
	var b bytes.Buffer
	if err := Write(&b, "bash", "gh", tree); err != nil || !strings.Contains(b.String(), "--value|--listen") && !strings.Contains(b.String(), "--listen|--value") {
		t.Fatalf("bash: value flags not skipped: %v\n%s", err, b.String())
	}
	b.Reset()
	if err := Write(&b, "fish", "gh", tree); err != nil || !strings.Contains(b.String(), `-l value -r -d 'it\'s one key'`) {
		t.Fatalf("fish quoting: %v\n%s", err, b.String())
	}
}

func TestWriteRejects(t *testing.T) {
	bad := []Command{{Name: "x; rm -rf /"}}
	if err := Write(&bytes.Buffer{}, "bash", "gh", bad); err == nil {
		t.Fatal("unsafe command name accepted")
	}
	if err := Write(&bytes.Buffer{}, "bash", "gh", []Command{{Name: "a", Flags: []Flag{{Name: "$(x)"}}}}); err == nil {
		t.Fatal("unsafe flag name accepted")
	}
	if err := Write(&bytes.Buffer{}, "tcsh", "gh", tree); err == nil {
		t.Fatal("unknown shell accepted")
	}
	if err := Write(&bytes.Buffer{}, "bash", "g h", tree); err == nil {
		t.Fatal("unsafe program name accepted")
	}
}
