# Microlinux: the autologin on tty1 starts the graphical session; other
# consoles get a plain shell.
[ -f ~/.bashrc ] && . ~/.bashrc
if [ -z "${DISPLAY:-}" ] && [ "$(tty)" = /dev/tty1 ]; then
	exec startx /usr/bin/openbox-session -- vt1 -nolisten tcp >~/.xsession-errors 2>&1
fi
