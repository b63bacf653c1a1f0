package table

import "github.com/google/uuid"

// newID is a server-generated string id: a random (v4) UUID, as the original's NEWID().
func newID() string { return uuid.NewString() }
