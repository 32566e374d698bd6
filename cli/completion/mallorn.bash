# bash completion for mallorn(1)                                     -*- shell-script -*-
# Commands, options and option arguments are read from `mallorn --help` and
# `mallorn COMMAND --help` when completing, so new options complete without touching this file:
#   - a command is a two-space-indented word under "commands:";
#   - an option is a -x/--xxx word of the command's help;
#   - an option's argument is the word after it in the usage line: a|b|c completes those words,
#     N or BYTES (numbers) completes nothing, any other placeholder (OLD, PATCH, KEY...) files.
# Installed as /usr/share/bash-completion/completions/mallorn (loaded on first use).

_mallorn_help_options()
{
    grep -oE '(^|[[:space:][(|])--?[A-Za-z][A-Za-z0-9-]*' | sed -E 's/^[[:space:][(|]+//' | sort -u
}

_mallorn()
{
    local cur prev words cword
    _init_completion || return

    local prog=${words[0]} cmd="" i
    for ((i = 1; i < cword; i++)); do
        if [[ ${words[i]} != -* ]]; then
            cmd=${words[i]}
            break
        fi
    done

    if [[ -z $cmd ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W '--help --version' -- "$cur"))
        else
            local commands
            commands=$("$prog" --help 2>/dev/null | sed -n '/^commands:/,/^[^ ]/p' |
                       grep -oE '^  [a-z][a-z0-9-]*' | tr -d ' ')
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return
    fi

    local help
    help=$("$prog" "$cmd" --help 2>/dev/null) || help=""

    # The argument of the option before the cursor, as the usage line names it.
    if [[ $prev == -* ]]; then
        local arg
        arg=$(grep -oE -- "(^|[[:space:][])${prev} [^][:space:]]+" <<<"$help" | head -n 1)
        arg=${arg##* }
        if [[ -n $arg && $arg != -* ]]; then
            case $arg in
                *'|'*) COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur")) ;;
                N | BYTES | SIZE | S) ;;
                *) _filedir ;;
            esac
            return
        fi
    fi

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(_mallorn_help_options <<<"$help") --help" -- "$cur"))
        return
    fi
    _filedir
} &&
    complete -F _mallorn mallorn

# ex: filetype=sh
