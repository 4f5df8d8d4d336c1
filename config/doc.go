// Package config is the typed configuration of every distchat binary.
//
// A value starts from documented defaults, then a YAML file (-config FILE or
// $DISTCHAT_CONFIG) overrides them, then DISTCHAT_* environment variables,
// then command-line flags: later sources win. Unknown YAML keys are errors,
// and Validate reports every problem at once, one per line, so an operator
// fixes a file in one pass instead of one restart per mistake.
package config
