package durable

import (
	"fmt"
	"testing"
)

func TestIDSetForgetsTheOldest(t *testing.T) {
	s := newIDSet(3)
	for i := range 4 {
		s.add(fmt.Sprint(i))
	}
	s.add("3") // again: no slot used
	if s.has("0") || !s.has("1") || !s.has("2") || !s.has("3") {
		t.Fatalf("%v", s.ids)
	}
	if len(s.ids) != 3 {
		t.Fatalf("%d ids kept", len(s.ids))
	}
}
