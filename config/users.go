package config

import (
	"fmt"
	"strings"

	"github.com/distchat/distchat/broker/wire"
	"golang.org/x/crypto/bcrypt"
)

// UsersFile is the shape of a users file: the accounts and their rooms.
type UsersFile struct {
	Users []User `yaml:"users"`
}

// LoadUsers reads a users file. It does not validate the users; Broker's
// Validate does, together with any inline ones.
func LoadUsers(path string) ([]User, error) {
	var f UsersFile
	if err := ReadYAML(path, &f); err != nil {
		return nil, fmt.Errorf("users file: %w", err)
	}
	return f.Users, nil
}

func validateUsers(users []User) []error {
	var errs []error
	seen := make(map[string]bool, len(users))
	for i, u := range users {
		where := fmt.Sprintf("auth.users[%d] %q", i, u.Name)
		if err := wire.ValidateName("user", u.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
		}
		if seen[u.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate user", where))
		}
		seen[u.Name] = true
		if !strings.HasPrefix(u.PasswordHash, "$2") {
			errs = append(errs, fmt.Errorf("%s: password_hash is not a bcrypt hash (make one with: broker hash-password)", where))
		} else if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			errs = append(errs, fmt.Errorf("%s: password_hash: %w", where, err))
		}
		for _, r := range u.Rooms {
			if err := wire.ValidateName("room", r); err != nil {
				errs = append(errs, fmt.Errorf("%s: rooms: %w", where, err))
			}
		}
	}
	return errs
}
