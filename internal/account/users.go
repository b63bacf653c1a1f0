package account

import (
	"context"
	"errors"

	"github.com/gatehouse/gatehouse/internal/user"
)

// Users is what accounts need from the users directory: every account is a user with a "custom"
// identity, refresh tokens, and revocation. UserDirectory adapts *user.Directory.
type Users interface {
	// Link records the account as a user (created on first sight, idempotent) and returns the user id
	// its tokens carry; ErrDisabled when the user is disabled.
	Link(ctx context.Context, a *Account) (string, error)
	// Issue returns a new refresh token for the user ("" when refresh tokens are off).
	Issue(ctx context.Context, userID string) (string, error)
	// Revoke revokes one refresh token (its rotation family).
	Revoke(ctx context.Context, userID, refreshToken string) error
	// RevokeAll revokes every token of the user issued until now.
	RevokeAll(ctx context.Context, userID string) error
	// SetDisabled disables (revoking everything) or re-enables the user.
	SetDisabled(ctx context.Context, userID string, disabled bool) error
}

// CustomIssuer is the issuer of the identities of built-in accounts in the users directory.
const CustomIssuer = "urn:gatehouse:accounts"

// UserDirectory adapts *user.Directory to Users.
type UserDirectory struct {
	Dir *user.Directory
	// Refresh issues refresh tokens at login (returned as "refreshToken" beside the app token).
	Refresh bool
}

// Link implements Users.
func (u UserDirectory) Link(ctx context.Context, a *Account) (string, error) {
	usr, err := u.Dir.Login(ctx, user.LinkInput{
		Provider: "custom", Issuer: CustomIssuer, Subject: a.ID, UserID: a.TokenUserID(),
		Claims: map[string]any{"email": a.Email, "email_verified": a.EmailVerified},
	})
	if errors.Is(err, user.ErrDisabled) {
		return usr.ID, ErrDisabled
	}
	if err != nil {
		return "", err
	}
	return usr.ID, nil
}

// Issue implements Users.
func (u UserDirectory) Issue(ctx context.Context, userID string) (string, error) {
	if !u.Refresh {
		return "", nil
	}
	return u.Dir.IssueRefresh(ctx, userID, "custom")
}

// Revoke implements Users.
func (u UserDirectory) Revoke(ctx context.Context, _ string, refreshToken string) error {
	return u.Dir.RevokeRefresh(ctx, refreshToken)
}

// RevokeAll implements Users.
func (u UserDirectory) RevokeAll(ctx context.Context, userID string) error {
	err := u.Dir.RevokeAll(ctx, userID)
	if errors.Is(err, user.ErrNotFound) {
		return nil
	}
	return err
}

// SetDisabled implements Users.
func (u UserDirectory) SetDisabled(ctx context.Context, userID string, disabled bool) error {
	var err error
	if disabled {
		err = u.Dir.Disable(ctx, userID)
	} else {
		err = u.Dir.Enable(ctx, userID)
	}
	if errors.Is(err, user.ErrNotFound) {
		return nil
	}
	return err
}
