package config

import (
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// This file is the schema-independent part: a walker over a yaml.Node tree that knows
// every node's line and column, records errors instead of stopping at the first, and
// reports keys that no section asked for. Sections (listen.go, kerberos.go, ...) use
// only mapping and field.

// pos is a 1-based line and column in the file.
type pos struct{ line, col int }

// top is where problems with no better place point: a missing top-level section.
var top = pos{1, 1}

func posOf(n *yaml.Node) pos { return pos{n.Line, n.Column} }

// decoder holds the state of one Parse call.
type decoder struct {
	file string // as given to Parse; used in messages
	dir  string // directory relative paths in the file are resolved against
	errs Errors

	mappings []*mapping            // every mapping visited, for the unknown-key pass
	values   map[string]*yaml.Node // field path -> value node as written, for cross-field checks
}

func newDecoder(file string) *decoder {
	return &decoder{
		file:   file,
		dir:    filepath.Dir(file),
		values: map[string]*yaml.Node{},
	}
}

// errorf records a problem and returns it, so that callers can attach an underlying Err.
func (d *decoder) errorf(p pos, field, format string, args ...any) *FieldError {
	e := &FieldError{File: d.file, Line: p.line, Col: p.col, Field: field, Msg: fmt.Sprintf(format, args...)}
	d.errs = append(d.errs, e)
	return e
}

// errorAt reports a problem with the field at path found by a cross-field check. It
// points at the field's value if the file sets it, and otherwise at fallback.
func (d *decoder) errorAt(path string, fallback pos, format string, args ...any) {
	p := fallback
	if n := d.values[path]; n != nil {
		p = posOf(n)
	}
	d.errorf(p, path, format, args...)
}

// sorted returns the errors in file order (problems with no line first).
func (d *decoder) sorted() Errors {
	sort.SliceStable(d.errs, func(i, j int) bool {
		a, b := d.errs[i], d.errs[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	return d.errs
}

// resolvePath makes a path from the file absolute, relative to the file's directory.
func (d *decoder) resolvePath(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	p = filepath.Join(d.dir, p)
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// deref follows YAML aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n == nil || (n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null")
}

// describe names a node's value for messages: a quoted string, a bare number or
// boolean, "a list" or "a mapping".
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return fmt.Sprintf("%q", n.Value)
		case "!!null":
			return "nothing"
		default:
			return n.Value
		}
	}
	return "an unsupported YAML node"
}

type keyValue struct{ key, val *yaml.Node }

// mapping is one YAML mapping of the schema (the document root or a section).
// Sections ask it for fields by name; every name asked for becomes known, and keys
// in the file that nobody asked for are reported as unknown once decoding is done.
type mapping struct {
	d     *decoder
	path  string // dotted field path; "" for the document root
	at    pos    // where "missing" errors for its fields point
	keys  map[string]keyValue
	order []keyValue
	known []string
	// rejected are keys reported by reject; reportUnknown leaves them alone, and they
	// are never suggested for typos.
	rejected []string
	// broken is set when the node is not a mapping; that was reported, and errors
	// about its fields would only repeat it.
	broken bool
}

// newMapping wraps n (nil or null: an absent or empty mapping). at is where errors
// about missing fields point: the mapping's own key, or 1:1 if it is absent.
func (d *decoder) newMapping(path string, at pos, n *yaml.Node, expect string) *mapping {
	m := &mapping{d: d, path: path, at: at, keys: map[string]keyValue{}}
	d.mappings = append(d.mappings, m)
	raw := n
	n = deref(n)
	if isNull(n) {
		return m
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(posOf(raw), path, "got %s; expected %s", describe(n), expect)
		m.broken = true
		return m
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kd := deref(k)
		if kd.Kind != yaml.ScalarNode {
			d.errorf(posOf(k), path, "got %s as a key; expected field names", describe(kd))
			continue
		}
		if prev, dup := m.keys[kd.Value]; dup {
			d.errorf(posOf(k), m.child(kd.Value), "duplicate field, already set at line %d; expected each field once", prev.key.Line)
			continue
		}
		kv := keyValue{key: k, val: v}
		m.keys[kd.Value] = kv
		m.order = append(m.order, kv)
	}
	return m
}

func (m *mapping) child(name string) string {
	if m.path == "" {
		return name
	}
	return m.path + "." + name
}

// field declares name as a field of this mapping and returns it. expect describes a
// valid value; it completes "missing" and wrong-type messages ("...; expected " + expect).
func (m *mapping) field(name, expect string) *field {
	m.known = append(m.known, name)
	f := &field{d: m.d, path: m.child(name), expect: expect, parent: m}
	if kv, ok := m.keys[name]; ok {
		f.key = kv.key
		f.at = kv.val
		f.val = deref(kv.val)
		m.d.values[f.path] = kv.val
	}
	return f
}

// section returns the mapping held by field name, for nested sections. Fields of an
// absent section report "missing" at this mapping's own position.
func (m *mapping) section(name string) *mapping {
	f := m.field(name, "")
	expect := "a mapping of " + f.path + " settings"
	if m.path == "" {
		expect = "the " + name + " section, a mapping"
	}
	at := m.at
	if f.key != nil {
		at = posOf(f.key)
	}
	if m.broken {
		sub := m.d.newMapping(f.path, at, nil, expect)
		sub.broken = true
		return sub
	}
	return m.d.newMapping(f.path, at, f.at, expect)
}

// reject reports the field name, if the file has it, with a message of its own instead
// of the generic "unknown field" (for sections of a future version, say). The name does
// not become known, so it is never suggested for a typo.
func (m *mapping) reject(name, format string, args ...any) {
	kv, ok := m.keys[name]
	if !ok {
		return
	}
	m.rejected = append(m.rejected, name)
	m.d.errorf(posOf(kv.key), m.child(name), format, args...)
}

// reportUnknown reports keys no section asked for, suggesting the closest known name
// in the same mapping, or the section a misplaced field belongs to.
func (d *decoder) reportUnknown() {
	leafs := map[string][]string{} // field name -> paths of fields with that name
	for _, m := range d.mappings {
		for _, k := range m.known {
			leafs[k] = append(leafs[k], m.child(k))
		}
	}
	for _, m := range d.mappings {
		known := map[string]bool{}
		for _, k := range m.known {
			known[k] = true
		}
		for _, k := range m.rejected {
			known[k] = true
		}
		for _, kv := range m.order {
			name := deref(kv.key).Value
			if known[name] {
				continue
			}
			path := m.child(name)
			switch {
			case name == "<<":
				d.errorf(posOf(kv.key), path, "YAML merge keys are not supported; expected the fields written out")
			case closest(name, m.known) != "":
				d.errorf(posOf(kv.key), path, "unknown field; did you mean %s?", closest(name, m.known))
			case len(leafs[name]) == 1:
				d.errorf(posOf(kv.key), path, "unknown field; did you mean %s?", leafs[name][0])
			case len(m.known) == 0:
				d.errorf(posOf(kv.key), path, "unknown field")
			default:
				d.errorf(posOf(kv.key), path, "unknown field; expected one of %s", strings.Join(m.known, ", "))
			}
		}
	}
}

// closest returns the candidate most like name, or "" if none is close enough to be
// a plausible typo: same letters ignoring case, '_' and '-', or an edit distance of at
// most a third of the candidate's length.
func closest(name string, candidates []string) string {
	squash := func(s string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(s))
	}
	best, bestDist := "", math.MaxInt
	for _, c := range candidates {
		if squash(c) == squash(name) {
			return c
		}
		dist := levenshtein(strings.ToLower(name), c)
		if dist <= max(1, len(c)/3) && dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// field is one value of the schema: a mapping field or a list item. Its accessors
// return ok=false, having reported why, when the value has the wrong type; they return
// ok=false without an error when the field is not set (absent or null).
type field struct {
	d      *decoder
	parent *mapping // nil for list items
	path   string
	expect string
	key    *yaml.Node // the key, if the field appears in the file
	at     *yaml.Node // the value as written (may be an alias); errors point here
	val    *yaml.Node // the value with aliases resolved
}

// set reports whether the file gives the field a (non-null) value.
func (f *field) set() bool { return !isNull(f.val) }

// required reports the field as missing unless it is set. A key with no value points at
// the key; an absent key points at the enclosing section (1:1 if that is absent too).
func (f *field) required() bool {
	if f.set() {
		return true
	}
	if f.parent != nil && f.parent.broken {
		return false
	}
	p := top
	switch {
	case f.key != nil:
		p = posOf(f.key)
	case f.at != nil:
		p = posOf(f.at)
	case f.parent != nil:
		p = f.parent.at
	}
	f.d.errorf(p, f.path, "missing; expected %s", f.expect)
	return false
}

// errorf reports a problem with the field's value and returns it.
func (f *field) errorf(format string, args ...any) *FieldError {
	return f.d.errorf(posOf(f.at), f.path, format, args...)
}

// invalid reports the value as wrong, completing the message with the field's expectation.
func (f *field) invalid(format string, args ...any) {
	f.errorf("%s; expected %s", fmt.Sprintf(format, args...), f.expect)
}

func (f *field) wrongType() {
	f.errorf("got %s; expected %s", describe(f.val), f.expect)
}

// str returns a scalar value as written. Numbers and booleans are accepted as their
// text, so that validation can say what is wrong with them.
func (f *field) str() (string, bool) {
	if !f.set() {
		return "", false
	}
	if f.val.Kind != yaml.ScalarNode {
		f.wrongType()
		return "", false
	}
	return f.val.Value, true
}

func (f *field) int() (int, bool) {
	if !f.set() {
		return 0, false
	}
	if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!int" {
		f.errorf("%s is not an integer; expected %s", describe(f.val), f.expect)
		return 0, false
	}
	var v int
	if err := f.val.Decode(&v); err != nil {
		f.errorf("%s is out of range; expected %s", f.val.Value, f.expect)
		return 0, false
	}
	return v, true
}

func (f *field) bool() (bool, bool) {
	if !f.set() {
		return false, false
	}
	if f.val.Kind != yaml.ScalarNode || f.val.ShortTag() != "!!bool" {
		f.errorf("%s is not a boolean; expected true or false", describe(f.val))
		return false, false
	}
	var v bool
	if err := f.val.Decode(&v); err != nil {
		f.errorf("%s is not a boolean; expected true or false", describe(f.val))
		return false, false
	}
	return v, true
}

const durationSyntax = "Go duration syntax like 5m or 300s"

// duration parses a duration string. Bare numbers are refused: a unit is required.
func (f *field) duration() (time.Duration, bool) {
	if !f.set() {
		return 0, false
	}
	if f.val.Kind != yaml.ScalarNode {
		f.errorf("got %s; expected %s", describe(f.val), durationSyntax)
		return 0, false
	}
	switch f.val.ShortTag() {
	case "!!int", "!!float":
		f.errorf("%s is a number without a unit; expected %s", f.val.Value, durationSyntax)
		return 0, false
	case "!!str":
		if v, err := time.ParseDuration(f.val.Value); err == nil {
			return v, true
		}
	}
	f.errorf("%s is not a duration; expected %s", describe(f.val), durationSyntax)
	return 0, false
}

// durationUpTo returns a duration greater than 0 and at most hi, reporting others.
func (f *field) durationUpTo(hi time.Duration) (time.Duration, bool) {
	v, ok := f.duration()
	switch {
	case !ok:
		return 0, false
	case v <= 0:
		f.invalid("%s is not positive", describe(f.val))
		return 0, false
	case v > hi:
		f.invalid("%s is too long", describe(f.val))
		return 0, false
	}
	return v, true
}

// durationIn returns a duration from lo to hi inclusive, reporting others.
func (f *field) durationIn(lo, hi time.Duration) (time.Duration, bool) {
	v, ok := f.duration()
	switch {
	case !ok:
		return 0, false
	case v < 0 && lo >= 0:
		f.invalid("%s is negative", describe(f.val))
		return 0, false
	case v < lo:
		f.invalid("%s is too short", describe(f.val))
		return 0, false
	case v > hi:
		f.invalid("%s is too long", describe(f.val))
		return 0, false
	}
	return v, true
}

// intIn returns an integer from lo to hi inclusive, reporting others.
func (f *field) intIn(lo, hi int) (int, bool) {
	v, ok := f.int()
	switch {
	case !ok:
		return 0, false
	case v < lo:
		f.invalid("%d is too small", v)
		return 0, false
	case v > hi:
		f.invalid("%d is too large", v)
		return 0, false
	}
	return v, true
}

// list returns the items of a list, each a field named path[i] expecting itemExpect.
func (f *field) list(itemExpect string) ([]*field, bool) {
	if !f.set() {
		return nil, false
	}
	if f.val.Kind != yaml.SequenceNode {
		f.wrongType()
		return nil, false
	}
	items := make([]*field, len(f.val.Content))
	for i, n := range f.val.Content {
		items[i] = &field{
			d:      f.d,
			path:   fmt.Sprintf("%s[%d]", f.path, i),
			expect: itemExpect,
			at:     n,
			val:    deref(n),
		}
		f.d.values[items[i].path] = n
	}
	return items, true
}

// mapping returns the mapping a field holds, for lists of mappings (an absent or null
// value is an empty mapping). Fields missing from it are reported at the value.
func (f *field) mapping(expect string) *mapping {
	at := top
	if f.at != nil {
		at = posOf(f.at)
	}
	return f.d.newMapping(f.path, at, f.at, expect)
}

// strings returns a list's items as strings with their fields (for per-item errors),
// reporting an empty list and items that are not strings.
func (f *field) strings(itemExpect string) ([]string, []*field) {
	items, ok := f.list(itemExpect)
	if !ok {
		return nil, nil
	}
	if len(items) == 0 {
		f.errorf("empty list; expected %s", f.expect)
		return nil, nil
	}
	var vals []string
	var fields []*field
	for _, it := range items {
		if !it.set() {
			it.errorf("empty item; expected %s", it.expect)
			continue
		}
		if s, ok := it.str(); ok {
			vals = append(vals, s)
			fields = append(fields, it)
		}
	}
	return vals, fields
}
