# As %systemd_post: on first install, let the preset decide (mountprop ships one that enables it;
# Fedora's default policy is "disable *"). Starting is left to the admin or the next boot.
if [ "$1" -eq 1 ]; then
	systemctl --no-reload preset mountprop.service >/dev/null 2>&1 || :
fi
