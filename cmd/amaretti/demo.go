package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/amaretti-auth/amaretti/caveat"
	"github.com/amaretti-auth/amaretti/epoch"
	"github.com/amaretti-auth/amaretti/internal/setup"
	"github.com/amaretti-auth/amaretti/macaroon"
	"github.com/amaretti-auth/amaretti/verifier"
)

// demoCommand runs the main job end to end on the embedded default, in a
// temporary directory: init, create an editor, mint, verify, touch, and
// verify the same token again.
func (e *env) demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "run mint → verify → touch → verify in a temporary directory, and show each step",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "use (and keep) this `DIR` instead of a temporary one"},
		},
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			ctx := c.Context
			dir := c.String("dir")
			if dir == "" {
				tmp, err := os.MkdirTemp("", "amaretti-demo-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(tmp)
				dir = tmp
			}
			step := func(n int, format string, args ...any) {
				fmt.Fprintf(e.stdout, "%d. %s\n", n, fmt.Sprintf(format, args...))
			}
			keys, _, err := macaroon.InitKeyStore(filepath.Join(dir, "keys"))
			if err != nil {
				return err
			}
			store, err := setup.Store(ctx, filepath.Join(dir, "amaretti.db"), setup.StoreOptions{Create: true})
			if err != nil {
				return err
			}
			defer store.Close()
			cur, _ := keys.Current()
			step(1, "initialised a key store (current key %s) and a SQLite database in %s", cur.ID(), dir)

			alice, err := store.Create(ctx, epoch.NewEditor{Username: "alice"})
			if err != nil {
				return err
			}
			step(2, "created editor alice, id %s, auth_epoch %s", alice.ID, formatTime(alice.AuthEpoch))

			minter, err := macaroon.NewMinter(keys, "demo.amaretti.local")
			if err != nil {
				return err
			}
			m, err := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour), macaroon.WithCaveats(caveat.Rights{"read", "edit"}))
			if err != nil {
				return err
			}
			step(3, "minted a token for alice: token id %s, %d characters, rights read,edit, expires %s", m.TokenID, len(m.Token), formatTime(m.Expires))

			v, err := verifier.New(keys, store)
			if err != nil {
				return err
			}
			id, err := v.Verify(ctx, m.Token, caveat.Request{Rights: []string{"edit"}})
			if err != nil {
				return fmt.Errorf("the fresh token did not verify: %w", err)
			}
			step(4, "verified it for a request exercising \"edit\": editor %s, role %s", id.EditorID, id.Role)

			weaker, err := macaroon.Attenuate(m.Token, caveat.Rights{"read"})
			if err != nil {
				return err
			}
			_, err = v.Verify(ctx, weaker, caveat.Request{Rights: []string{"edit"}})
			step(5, "attenuated it to \"read\" without any key; the weaker token asking for \"edit\" is denied: %v", err)

			touched, err := store.Touch(ctx, alice.ID)
			if err != nil {
				return err
			}
			step(6, "touched alice's epoch: auth_epoch is now %s", formatTime(touched.AuthEpoch))

			_, err = v.Verify(ctx, m.Token, caveat.Request{})
			if err == nil {
				return fmt.Errorf("the token still verified after the touch")
			}
			step(7, "verified the same token again: denied (%v), HTTP %d", err, verifier.ProblemFor(err).Status)

			m2, err := minter.Mint(ctx, alice.ID, macaroon.ExpiresIn(time.Hour))
			if err != nil {
				return err
			}
			if _, err := v.Verify(ctx, m2.Token, caveat.Request{}); err != nil {
				return fmt.Errorf("a token minted after the touch did not verify: %w", err)
			}
			step(8, "a token minted after the touch verifies")
			return nil
		},
	}
}
