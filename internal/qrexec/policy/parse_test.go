package policy

import (
	"errors"
	"fmt"
)

// parseText parses the policy text of one file, in which !include and
// !include-dir are errors: the tests' and the fuzzer's way in (a real
// policy is a directory, Load).
func parseText(file string, data []byte) (*Policy, error) {
	refuse := errors.New("includes are not available in a single parsed file")
	l := loader{
		readFile: func(string) ([]byte, error) { return nil, refuse },
		readDir:  func(string) ([]string, error) { return nil, refuse },
		chain:    []string{file},
	}
	if err := l.parse(file, data); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return &Policy{rules: l.rules}, nil
}
