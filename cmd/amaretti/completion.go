package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionFlag is the hidden flag urfave/cli answers with the words that
// may come next; the shell scripts below call the CLI with it.
const completionFlag = "--generate-bash-completion"

// bashCompletion is urfave/cli's bash_autocomplete, for amaretti.
const bashCompletion = `# bash completion for amaretti: add to ~/.bashrc
#   source <(amaretti completion bash)
_amaretti_complete() {
	local cur opts
	COMPREPLY=()
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == "-"* ]]; then
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" "$cur" ` + completionFlag + ` 2>/dev/null)
	else
		opts=$("${COMP_WORDS[@]:0:$COMP_CWORD}" ` + completionFlag + ` 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$opts" -- "$cur"))
	return 0
}
complete -o bashdefault -o default -F _amaretti_complete amaretti
`

// zshCompletion is urfave/cli's zsh_autocomplete, for amaretti.
const zshCompletion = `#compdef amaretti
# zsh completion for amaretti: add to ~/.zshrc (after compinit)
#   source <(amaretti completion zsh)
_amaretti() {
	local -a opts
	local cur
	cur=${words[-1]}
	if [[ "$cur" == "-"* ]]; then
		opts=("${(@f)$(${words[@]:0:#words[@]-1} "$cur" ` + completionFlag + ` 2>/dev/null)}")
	else
		opts=("${(@f)$(${words[@]:0:#words[@]-1} ` + completionFlag + ` 2>/dev/null)}")
	fi
	if [[ "${opts[1]}" != "" ]]; then
		_describe 'values' opts
	else
		_files
	fi
}
if [ "$funcstack[1]" = "_amaretti" ]; then
	_amaretti "$@"
else
	compdef _amaretti amaretti
fi
`

func (e *env) completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh: source <(amaretti completion bash)",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			a, err := args(c, "shell")
			if err != nil {
				return err
			}
			switch a[0] {
			case "bash":
				_, err = fmt.Fprint(e.stdout, bashCompletion)
			case "zsh":
				_, err = fmt.Fprint(e.stdout, zshCompletion)
			default:
				return usagef("completion: %q is not a shell this supports: use bash or zsh", a[0])
			}
			return err
		},
	}
}
