// Package golden reads the contract files generated from the Python side (testdata/) and
// compares messages by content, for the tests of every package.
package golden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/arc-voice/arc/libs/go-sdk/wire"
)

// Dir is the module's testdata folder, wherever the test runs from.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata")
}

// Read returns a golden file's bytes.
func Read(name string) ([]byte, error) { return os.ReadFile(filepath.Join(Dir(), name)) }

// Case is one entry of request_cases.json: a payload and the code Python answered it with.
type Case struct {
	Kind    string `json:"kind"`
	Name    string `json:"name"`
	Payload []byte `json:"payload"` // base64 in the file
	Code    string `json:"code"`
}

// Cases reads request_cases.json.
func Cases() ([]Case, error) {
	data, err := Read("request_cases.json")
	if err != nil {
		return nil, err
	}
	var cases []Case
	return cases, json.Unmarshal(data, &cases)
}

// normalize makes decoded values comparable whatever integer width either side chose.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64, uint:
		return reflect.ValueOf(x).Convert(reflect.TypeFor[float64]()).Float()
	case float32:
		return float64(x)
	}
	return v
}

// AnswersAsPython runs, as subtest kind/name, each case of request_cases.json whose kind has a
// parser, and fails it unless the parser's error has the code Python answered (none: accepted);
// it fails t when fewer than atLeast cases ran, as a golden file lost its cases would.
func AnswersAsPython(t *testing.T, atLeast int, parsers map[string]func([]byte) error) {
	t.Helper()
	cases, err := Cases()
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, c := range cases {
		parse, ok := parsers[c.Kind]
		if !ok {
			continue
		}
		seen++
		t.Run(c.Kind+"/"+c.Name, func(t *testing.T) {
			err := parse(c.Payload)
			if got := wire.CodeOf(err); string(got) != c.Code {
				t.Fatalf("Go says %q (%v), Python says %q", got, err, c.Code)
			}
		})
	}
	if seen < atLeast {
		t.Fatalf("only %d cases of the kinds %v in the golden file", seen, slices.Sorted(maps.Keys(parsers)))
	}
}

// RoundTrip reads the golden file name, decodes it, encodes the value again and fails t unless
// both hold the same content (SameJSON for a .json file, else SameMsgpack). It returns the
// decoded value for the test's own checks.
func RoundTrip[T any](t testing.TB, name string, decode func([]byte) (T, error), encode func(T) ([]byte, error)) T {
	t.Helper()
	data, err := Read(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := decode(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := encode(v)
	if err != nil {
		t.Fatal(err)
	}
	same := SameMsgpack
	if strings.HasSuffix(name, ".json") {
		same = SameJSON
	}
	if err := same(data, again); err != nil {
		t.Fatal(err)
	}
	return v
}

// SameMsgpack fails unless a and b hold the same map: same keys, same values (bytes stay
// bytes, strings stay strings), integer widths aside.
func SameMsgpack(a, b []byte) error {
	x, y, err := decodeBoth(msgpack.Unmarshal, a, b)
	if err != nil {
		return err
	}
	return same(normalize(x), normalize(y))
}

// SameJSON is SameMsgpack for JSON.
func SameJSON(a, b []byte) error {
	x, y, err := decodeBoth(json.Unmarshal, a, b)
	if err != nil {
		return err
	}
	return same(x, y)
}

func decodeBoth(unmarshal func([]byte, any) error, a, b []byte) (x, y map[string]any, err error) {
	if err := unmarshal(a, &x); err != nil {
		return nil, nil, fmt.Errorf("first: %w", err)
	}
	if err := unmarshal(b, &y); err != nil {
		return nil, nil, fmt.Errorf("second: %w", err)
	}
	return x, y, nil
}

func same(x, y any) error {
	if reflect.DeepEqual(x, y) {
		return nil
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	if bytes.Equal(xs, ys) {
		return fmt.Errorf("same JSON, different types: %#v vs %#v", x, y)
	}
	return fmt.Errorf("differ:\n python: %s\n go:     %s", xs, ys)
}
