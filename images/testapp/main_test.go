package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func runArgs(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		want int
	}{
		{[]string{"exit"}, 0},
		{[]string{"exit", "--code", "4"}, 4},
		{[]string{"exit", "7"}, 7},
		{[]string{"exit", "--code", "2", "--after", "1ms"}, 2},
		{[]string{"exit", "300"}, 1},
		{[]string{"exit", "--code", "-3"}, 1},
		{[]string{"exit", "x"}, 1},
		{[]string{"exit", "--bogus"}, 2},
		{[]string{"sleep", "0"}, 0},
		{[]string{"sleep", "1ms"}, 0},
		{[]string{"sleep", "soon"}, 1},
		{[]string{"client"}, 1},
		{[]string{"nonsense"}, 2},
		{nil, 2},
		{[]string{"--help"}, 0},
		{[]string{"serve", "--help"}, 0},
		{[]string{"burn", "--cores", "0"}, 1},
		{[]string{"burn", "extra"}, 1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got, _, stderr := runArgs(tt.args...); got != tt.want {
				t.Errorf("status %d, want %d (stderr %q)", got, tt.want, stderr)
			}
		})
	}
}

func TestSleepArgs(t *testing.T) {
	tests := []struct {
		args    []string
		want    time.Duration
		wantErr bool
	}{
		{nil, -1, false},
		{[]string{"30"}, 30 * time.Second, false},
		{[]string{"1.5"}, 1500 * time.Millisecond, false},
		{[]string{"2m"}, 2 * time.Minute, false},
		{[]string{"-1s"}, 0, true},
		{[]string{"1", "2"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := sleepArgs(tt.args)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("sleepArgs(%q) = %v, %v; want %v, error %t", tt.args, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	_, out, _ := runArgs("--help")
	for _, c := range commands() {
		if !strings.Contains(out, "testapp "+c.name) {
			t.Errorf("help lacks %q:\n%s", c.name, out)
		}
	}
}

// TestBurn: burn uses CPU for --for, then idles until stopped.
func TestBurn(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"burn", "--cores", "1.5", "--for", "30ms"}, env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	if code != 0 || out.String() != "burning 1.500 cores\nidle\n" {
		t.Errorf("status %d, output %q (stderr %q)", code, out.String(), errb.String())
	}
}
