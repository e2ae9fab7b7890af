package config

import (
	"fmt"
	"strings"
)

// FieldError is one problem found in a configuration file. Its Error method renders it as
//
//	FILE:LINE:COL: FIELD.PATH: what is wrong; expected ...
//
// Line and Col are 1-based; Col is 0 when only the line is known (YAML syntax errors),
// and Line is 0 when the problem concerns the whole file (for example, it cannot be read).
// Field is the dotted path of the field, with list indexes ("kerberos.enctypes[1]"); it
// is empty for problems with the document itself.
type FieldError struct {
	File  string
	Line  int
	Col   int
	Field string
	Msg   string
	// Err is the underlying error, if any (for example the *fs.PathError of an
	// unreadable keytab), so that errors.Is(err, fs.ErrNotExist) works.
	Err error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.File == "" {
		b.WriteString("<config>")
	} else {
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the underlying error, if any.
func (e *FieldError) Unwrap() error { return e.Err }

// Errors is every problem found in one configuration file, in file order. Load and
// Parse return it (never an empty one) whenever the configuration is not usable.
type Errors []*FieldError

// Error joins the errors' messages with newlines, one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.Is and errors.As see each FieldError.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
