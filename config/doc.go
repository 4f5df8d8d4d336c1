// Package config is the typed configuration of every distchat binary.
//
// Defaults, a YAML file (-config FILE or $DISTCHAT_CONFIG), DISTCHAT_*
// variables and flags apply in turn, later ones winning. Unknown YAML keys are
// errors, and Validate reports every problem at once, one a line, so an
// operator fixes a file in one pass, not one restart a mistake.
package config
