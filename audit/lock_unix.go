//go:build unix

package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockFile is held by the one process that writes a trail. Two writers
// would interleave chains; the kernel releases the lock when the process
// dies, so recovery after kill -9 is not blocked.
const lockFile = ".lock"

// ErrLocked is returned by Open when another process writes the trail.
var ErrLocked = errors.New("監査証跡は別のプロセスが書き込み中です (audit trail is in use by another process)")

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("locking audit trail %s: %w", dir, err)
	}
	return f, nil
}
