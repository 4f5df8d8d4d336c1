package rawio

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestFileWriter: what FileWriter writes lands at the file's offset, one
// write after the other, and a write the file refuses returns an error that
// names the file, as os.File's Write does.
func TestFileWriter(t *testing.T) {
	tests := []struct {
		name    string
		flag    int
		writes  []string
		want    string
		wantErr bool
	}{
		{name: "appends in order", flag: os.O_RDWR | os.O_CREATE, writes: []string{"alpha ", "", "beta ", "gamma"}, want: "alpha beta gamma"},
		{name: "one large write", flag: os.O_RDWR | os.O_CREATE, writes: []string{string(bytes.Repeat([]byte("x"), 1<<20))}, want: string(bytes.Repeat([]byte("x"), 1<<20))},
		{name: "read-only file refuses", flag: os.O_RDONLY | os.O_CREATE, writes: []string{"nope"}, want: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log")
			f, err := os.OpenFile(path, tt.flag, 0o600)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			w := FileWriter(f)
			if _, plain := w.(*os.File); plain == Enabled {
				t.Fatalf("FileWriter returned %T on a build with raw calls %v", w, Enabled)
			}
			for _, s := range tt.writes {
				n, err := w.Write([]byte(s))
				if tt.wantErr {
					var pe *os.PathError
					if !errors.As(err, &pe) || pe.Path != path {
						t.Fatalf("Write on a read-only file: error %v, want an *os.PathError naming %s", err, path)
					}
					continue
				}
				if err != nil || n != len(s) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(s), n, err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Fatalf("file holds %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
}
