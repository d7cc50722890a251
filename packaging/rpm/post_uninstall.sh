# As %systemd_postun_with_restart: reload, and after an upgrade restart it if it was running.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -ge 1 ]; then
	systemctl try-restart mountprop.service >/dev/null 2>&1 || :
fi
