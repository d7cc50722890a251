# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_mountprop_global_optspecs
    string join \n config= v/verbose q/quiet enter-host h/help V/version
end

function __fish_mountprop_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_mountprop_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_mountprop_using_subcommand
    set -l cmd (__fish_mountprop_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c mountprop -n "__fish_mountprop_needs_command" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_needs_command" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_needs_command" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_needs_command" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_needs_command" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_needs_command" -s V -l version -d 'Print version'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "check" -d 'Report what is wrong; changes nothing. Exit 0 compliant, 1 drift, 2 could not check'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "probe" -d 'Check, and prove with real mounts which Kubernetes mountPropagation modes work: a tiny tmpfs is mounted on the host and looked for in a container-like copy of each running runtime\'s mount namespace, then the other way round; all of it is taken away again. Exit codes as for check'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "apply" -d 'Fix what can be fixed, then check again. Exit 0 compliant, 1 still not, 2 error'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "revert" -d 'Remove the drop-ins mountprop wrote (only those) and reload systemd once'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "daemon" -d 'Run as the mountprop.service daemon: fix at start, then keep the node fixed'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "status" -d 'What the running daemon last found (/run/mountprop/state.json). Exit 0 compliant, 1 not, 2 daemon not running'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "config" -d 'Validate or print the configuration'
complete -c mountprop -n "__fish_mountprop_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -l root -d 'Work on the image tree at DIR (no running systemd, nothing mounted): unit files are read and drop-ins written below DIR only. The config defaults to DIR/etc/mountprop/config.toml' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -l json -d 'Machine-readable report on stdout'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -l oneline -d 'One line on stdout, errors included (for node-problem-detector\'s custom plugins)'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand check" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -l timeout -d 'Give up on what is not done after this many seconds' -r
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -l json -d 'Machine-readable report on stdout'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -l oneline -d 'One line on stdout, errors included (for node-problem-detector\'s custom plugins)'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand probe" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l root -d 'Work on the image tree at DIR (no running systemd, nothing mounted): unit files are read and drop-ins written below DIR only. The config defaults to DIR/etc/mountprop/config.toml' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l dry-run -d 'Print what would be done and touch nothing'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l json -d 'Machine-readable report on stdout'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l oneline -d 'One line on stdout, errors included (for node-problem-detector\'s custom plugins)'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand apply" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -l root -d 'Work on the image tree at DIR (no running systemd, nothing mounted): unit files are read and drop-ins written below DIR only. The config defaults to DIR/etc/mountprop/config.toml' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand revert" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand daemon" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand daemon" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand daemon" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand daemon" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -l alive -d 'Only whether the daemon runs and has checked within three intervals, whatever the node\'s state: exit 0 yes, 1 no (a Kubernetes liveness and readiness probe)'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -l json -d 'Machine-readable report on stdout'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -l oneline -d 'One line on stdout, errors included (for node-problem-detector\'s custom plugins)'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand status" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -f -a "check" -d 'Validate a config file (default: the --config file or /etc/mountprop/config.toml)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -f -a "default" -d 'Print a commented config with every default'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and not __fish_seen_subcommand_from check default help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from check" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from check" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from check" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from default" -l config -d 'Config file [default: /etc/mountprop/config.toml; built-in defaults if absent]' -r -F
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from default" -s v -l verbose -d 'More log output (-v: what changed, -vv: debug)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from default" -s q -l quiet -d 'Only errors in the log'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from default" -l enter-host -d 'First enter PID 1\'s mount namespace: for a privileged pod with hostPID (the DaemonSet), so that files, mounts and the system bus are the host\'s. Also MOUNTPROP_ENTER_HOST=1'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from default" -s h -l help -d 'Print help'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "check" -d 'Validate a config file (default: the --config file or /etc/mountprop/config.toml)'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "default" -d 'Print a commented config with every default'
complete -c mountprop -n "__fish_mountprop_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "check" -d 'Report what is wrong; changes nothing. Exit 0 compliant, 1 drift, 2 could not check'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "probe" -d 'Check, and prove with real mounts which Kubernetes mountPropagation modes work: a tiny tmpfs is mounted on the host and looked for in a container-like copy of each running runtime\'s mount namespace, then the other way round; all of it is taken away again. Exit codes as for check'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "apply" -d 'Fix what can be fixed, then check again. Exit 0 compliant, 1 still not, 2 error'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "revert" -d 'Remove the drop-ins mountprop wrote (only those) and reload systemd once'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "daemon" -d 'Run as the mountprop.service daemon: fix at start, then keep the node fixed'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "status" -d 'What the running daemon last found (/run/mountprop/state.json). Exit 0 compliant, 1 not, 2 daemon not running'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "config" -d 'Validate or print the configuration'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and not __fish_seen_subcommand_from check probe apply revert daemon status config help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "check" -d 'Validate a config file (default: the --config file or /etc/mountprop/config.toml)'
complete -c mountprop -n "__fish_mountprop_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "default" -d 'Print a commented config with every default'
