// Package golden reads the contract files generated from the Python side (testdata/) and
// compares messages by content, for the tests of every package.
package golden

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"

	"github.com/vmihailenco/msgpack/v5"
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

// SameMsgpack fails unless a and b hold the same map: same keys, same values (bytes stay
// bytes, strings stay strings), integer widths aside.
func SameMsgpack(a, b []byte) error {
	var x, y map[string]any
	if err := msgpack.Unmarshal(a, &x); err != nil {
		return fmt.Errorf("first: %w", err)
	}
	if err := msgpack.Unmarshal(b, &y); err != nil {
		return fmt.Errorf("second: %w", err)
	}
	return same(normalize(x), normalize(y))
}

// SameJSON is SameMsgpack for JSON.
func SameJSON(a, b []byte) error {
	var x, y map[string]any
	if err := json.Unmarshal(a, &x); err != nil {
		return fmt.Errorf("first: %w", err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		return fmt.Errorf("second: %w", err)
	}
	return same(x, y)
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
