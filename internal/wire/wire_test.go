package wire

import (
	"strings"
	"testing"
)

func TestJoinToken(t *testing.T) {
	hash := strings.Repeat("0f", 32)
	tests := []struct {
		in   string
		want JoinToken
		ok   bool
	}{
		{"wharf1." + hash + ".s3cret", JoinToken{CAHash: hash, Secret: "s3cret"}, true},
		{"wharf1." + strings.ToUpper(hash) + ".s3cret\n", JoinToken{CAHash: hash, Secret: "s3cret"}, true},
		{"s3cret", JoinToken{Secret: "s3cret"}, true},
		{"wharf1.abc.s3cret", JoinToken{}, false},
		{"wharf1." + hash + ".", JoinToken{}, false},
		{"wharf2." + hash + ".x", JoinToken{}, false},
		{"", JoinToken{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseJoinToken(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("ParseJoinToken(%q) = %+v, %v; want %+v, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if !tt.ok {
				return
			}
			if again, err := ParseJoinToken(got.String()); err != nil || again != got {
				t.Errorf("ParseJoinToken(%q) = %+v, %v; want %+v back", got.String(), again, err, got)
			}
		})
	}
}

func TestNodeToken(t *testing.T) {
	tests := []struct {
		tok  string
		node string
		ok   bool
	}{
		{NodeToken("n1.example", "0123"), "n1.example", true},
		{"wharfnode.n1.0123", "n1", true},
		{"wharfnode..0123", "", false},
		{"wharfnode.n1", "", false},
		{"wharf1.abc.0123", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.tok, func(t *testing.T) {
			node, ok := NodeOfToken(tt.tok)
			if node != tt.node || ok != tt.ok {
				t.Errorf("NodeOfToken(%q) = %q, %v; want %q, %v", tt.tok, node, ok, tt.node, tt.ok)
			}
		})
	}
}
