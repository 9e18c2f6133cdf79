package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// emit prints a command's result: doc as one line of JSON with --json,
// otherwise whatever human writes.
func (a *app) emit(doc any, human func(w io.Writer)) error {
	if a.g.json {
		enc := json.NewEncoder(a.stdout)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
		return nil
	}
	human(a.stdout)
	return nil
}

// table aligns columns for human output.
func table(w io.Writer, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		for i, cell := range r {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, cell)
		}
		io.WriteString(tw, "\n")
	}
	tw.Flush()
}

// timeOrNil keeps "never" distinct from a time in JSON output.
func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func formatTime(t time.Time) string {
	return t.Local().Format(time.RFC3339)
}

// rawJSON prints a stored JSON document as itself rather than as a string,
// and an absent one as null.
func rawJSON(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
