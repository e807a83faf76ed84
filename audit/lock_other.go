//go:build !unix

package audit

import (
	"errors"
	"os"
)

// ErrLocked is returned by Open when another process writes the trail.
var ErrLocked = errors.New("監査証跡は別のプロセスが書き込み中です (audit trail is in use by another process)")

// lockDir does not lock on systems without flock; run one writer per trail.
func lockDir(dir string) (*os.File, error) { return nil, nil }
