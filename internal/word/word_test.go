package word

import (
	"encoding/binary"
	"testing"
)

func TestLoad64(t *testing.T) {
	s := "\x01\x02\x03\x04\x05\x06\x07\x08\x09\xff"
	for i := 0; i+8 <= len(s); i++ {
		if got, want := Load64(s, i), binary.LittleEndian.Uint64([]byte(s[i:i+8])); got != want {
			t.Errorf("Load64(s, %d) = %#x, want %#x", i, got, want)
		}
	}
}
