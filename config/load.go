package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment variable read: YAML key a.b_c is DISTCHAT_A_B_C.
const EnvPrefix = "DISTCHAT"

// Validator is implemented by every configuration type.
type Validator interface {
	Validate() error
}

// Load resets *cfg to defaults, then applies the YAML file of -config (or
// $DISTCHAT_CONFIG, a flag Load adds to fs), the environment and the flags
// in args, bound to *cfg on fs. It returns flag.ErrHelp for -h, else every
// problem, joined.
func Load[T any, PT interface {
	*T
	Validator
}](fs *flag.FlagSet, args []string, cfg PT, defaults T) error {
	path := os.Getenv(EnvPrefix + "_CONFIG")
	fs.StringVar(&path, "config", path, "YAML configuration `file` (also $"+EnvPrefix+"_CONFIG); flags override it")
	// Parse twice: to find -config, then to let flags win over file and environment.
	if err := fs.Parse(args); err != nil {
		return err
	}
	*cfg = defaults
	// A bad file or variable does not hide what Validate finds.
	var errs []error
	if path != "" {
		errs = append(errs, ReadYAML(path, cfg))
	}
	errs = append(errs, applyEnv(EnvPrefix, reflect.ValueOf(cfg).Elem(), os.LookupEnv))
	fs.VisitAll(func(f *flag.Flag) {
		if l, ok := f.Value.(*listValue); ok {
			l.seen = false
		}
	})
	if err := fs.Parse(args); err != nil {
		return err
	}
	errs = append(errs, cfg.Validate())
	return errors.Join(errs...)
}

// ReadYAML decodes the file at path into v, refusing unknown keys.
func ReadYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		if te, ok := errors.AsType[*yaml.TypeError](err); ok {
			// One line per problem: "config FILE: line 2: unknown key foo".
			errs := make([]error, 0, len(te.Errors))
			for _, e := range te.Errors {
				errs = append(errs, fmt.Errorf("config %s: %s", path, unknownKey.ReplaceAllString(e, "unknown key $1")))
			}
			return errors.Join(errs...)
		}
		return fmt.Errorf("config %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	return nil
}

// unknownKey matches yaml.v3's wording for a key that no field takes.
var unknownKey = regexp.MustCompile(`field (\S+) not found in type \S+`)

var durationType = reflect.TypeOf(time.Duration(0))

// applyEnv sets struct v's fields from variables prefix_KEY (the upper-cased YAML key).
func applyEnv(prefix string, v reflect.Value, lookup func(string) (string, bool)) error {
	t := v.Type()
	var errs []error
	for i := range t.NumField() {
		f := t.Field(i)
		key := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if key == "" || key == "-" || !f.IsExported() {
			continue
		}
		name := prefix + "_" + strings.ToUpper(key)
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct {
			errs = append(errs, applyEnv(name, fv, lookup))
			continue
		}
		s, ok := lookup(name)
		if !ok {
			continue
		}
		if err := setFromString(fv, s); err != nil {
			errs = append(errs, fmt.Errorf("environment %s=%q: %w", name, s, err))
		}
	}
	return errors.Join(errs...)
}

// setFromString parses s into fv by its type.
func setFromString(fv reflect.Value, s string) error {
	switch {
	case fv.Type() == durationType:
		return setParsed(s, time.ParseDuration, func(d time.Duration) { fv.SetInt(int64(d)) })
	case fv.Kind() == reflect.String:
		fv.SetString(s)
	case fv.Kind() == reflect.Bool:
		return setParsed(s, strconv.ParseBool, fv.SetBool)
	case fv.CanInt():
		return setParsed(s, func(s string) (int64, error) { return strconv.ParseInt(s, 10, 64) }, fv.SetInt)
	case fv.CanUint():
		return setParsed(s, func(s string) (uint64, error) { return strconv.ParseUint(s, 10, 64) }, fv.SetUint)
	case fv.Kind() == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		fv.Set(reflect.ValueOf(SplitList(s)))
	default:
		return errors.New("cannot be set from the environment")
	}
	return nil
}

// setParsed calls set with what parse makes of s, unless parse fails.
func setParsed[T any](s string, parse func(string) (T, error), set func(T)) error {
	v, err := parse(s)
	if err == nil {
		set(v)
	}
	return err
}

// SplitList splits a comma-separated list, dropping empty items and spaces.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// listValue is a repeatable, comma-separated list flag: its first use
// replaces what the file or environment set; later uses add.
type listValue struct {
	p    *[]string
	seen bool
}

func (l *listValue) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l *listValue) Set(s string) error {
	if !l.seen {
		*l.p = nil
		l.seen = true
	}
	*l.p = append(*l.p, SplitList(s)...)
	return nil
}

// ListVar binds a repeatable, comma-separated list flag to p.
func ListVar(fs *flag.FlagSet, p *[]string, name, usage string) {
	fs.Var(&listValue{p: p}, name, usage)
}
