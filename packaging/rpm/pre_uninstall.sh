# As %systemd_preun, on erase only ($1 = 0; an upgrade keeps it running): stop and disable it,
# then take away the drop-ins mountprop wrote (only those), while the binary is still there.
if [ "$1" -eq 0 ]; then
	systemctl --no-reload disable --now mountprop.service >/dev/null 2>&1 || :
	/usr/bin/mountprop revert >/dev/null 2>&1 || :
fi
