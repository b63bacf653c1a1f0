package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse/gatehouse/internal/user"
)

// ErrNoUser is SetUserDisabled's answer when the reference names neither an account nor a user of
// the users directory. It matches user.ErrNotFound too (errors.Is), for handlers that map that one.
var ErrNoUser error = noUser{}

type noUser struct{}

func (noUser) Error() string        { return "account: no such account or user" }
func (noUser) Is(target error) bool { return target == user.ErrNotFound }

// Switched is what SetUserDisabled changed.
type Switched struct {
	// Account is the built-in account that changed together with its user; nil when the reference
	// named a user of the directory only (a provider login such as Google:1234).
	Account *Account
	// UserID is the user's id in the directory (the id its tokens carry).
	UserID string
}

// SetUserDisabled is the one disable/enable decision of `gatehouse users disable|enable`, the
// console's Users page and the admin APIs (/admin/accounts/{ref}/… and /admin/users/{id}/…).
//
// When accounts is not nil and ref names an account (its id, email address or user id), the account
// and its user in the directory change together (Service.SetDisabled: disabling revokes every token).
// Otherwise ref is a user id of the directory (user.Directory.Disable or Enable). ErrNoUser when
// neither exists; any other error is the database's.
func SetUserDisabled(ctx context.Context, accounts *Service, dir *user.Directory, ref string, disabled bool) (Switched, error) {
	if ref == "" {
		return Switched{}, ErrNoUser
	}
	if accounts != nil {
		a, err := accounts.Find(ctx, ref)
		switch {
		case err == nil:
			if err := accounts.SetDisabled(ctx, a.ID, disabled); err != nil {
				if errors.Is(err, ErrNotFound) { // deleted meanwhile
					return Switched{}, ErrNoUser
				}
				return Switched{}, fmt.Errorf("account: set disabled: %w", err)
			}
			a.Disabled = disabled
			return Switched{Account: a, UserID: a.TokenUserID()}, nil
		case !errors.Is(err, ErrNotFound):
			return Switched{}, fmt.Errorf("account: find %q: %w", ref, err)
		}
	}
	if dir == nil {
		return Switched{}, ErrNoUser
	}
	change := dir.Enable
	if disabled {
		change = dir.Disable
	}
	if err := change(ctx, ref); err != nil {
		if errors.Is(err, user.ErrNotFound) {
			return Switched{}, ErrNoUser
		}
		return Switched{}, fmt.Errorf("account: set user disabled: %w", err)
	}
	return Switched{UserID: ref}, nil
}
