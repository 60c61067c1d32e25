#!/bin/bash
# A real `dpkg -i` of the package, its maintainer scripts included, without
# changing this machine: run by package_test.sh as root inside `unshare -m`,
# it lays throw-away overlays over /etc, /var and /usr first, so everything
# dpkg, adduser and the scripts write lands in SCRATCH and vanishes with the
# mount namespace.
#
#   unshare -m --propagation private bash dpkg_install.sh DEB SCRATCH
set -euo pipefail
exec </dev/null
deb=$1 scratch=$2

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

for dir in etc var usr; do
  mkdir -p "$scratch/$dir-upper" "$scratch/$dir-work"
  mount -t overlay overlay -o "lowerdir=/$dir,upperdir=$scratch/$dir-upper,workdir=$scratch/$dir-work" "/$dir"
done
# Hide the host's systemd, if any: the scripts must not reload or start units
# of the real machine from here.
if [[ -d /run/systemd ]]; then
  mount -t tmpfs tmpfs /run/systemd
fi

# man-db's trigger would rebuild the whole manual index (slow, and not ours to test).
rm -f /var/lib/man-db/auto-update

dpkg -i "$deb" >"$scratch/dpkg-install.log" 2>&1 || {
  cat "$scratch/dpkg-install.log" >&2
  fail "dpkg -i failed"
}
[[ $(dpkg-query -W -f '${Status}' borderscan) == "install ok installed" ]] || fail "dpkg does not list borderscan as installed"
getent passwd borderscan >/dev/null || fail "postinst made no borderscan user"
[[ $(stat -c '%U %a' /var/lib/borderscan) == "borderscan 700" ]] ||
  fail "/var/lib/borderscan is $(stat -c '%U %a' /var/lib/borderscan), want borderscan 700"
[[ -L /etc/systemd/system/multi-user.target.wants/borderscand.service ]] || fail "the unit was not enabled"

# The operator's first step, as the service user so the database stays its own.
token=$(runuser -u borderscan -- borderscand token create --role admin --name ops \
  --config /etc/borderscan/borderscand.toml | tail -n 1 | awk '{print $NF}')
[[ $token == bst_* ]] || fail "token create as the borderscan user failed"
[[ $(stat -c %U /var/lib/borderscan/borderscan.db) == borderscan ]] || fail "the database is not the borderscan user's"

# Local changes to the conffile survive a reinstall (upgrade path).
echo "# local change" >>/etc/borderscan/borderscand.toml
dpkg -i --force-confold "$deb" >>"$scratch/dpkg-install.log" 2>&1 || fail "reinstalling failed"
[[ $(tail -n 1 /etc/borderscan/borderscand.toml) == "# local change" ]] || fail "reinstalling lost the local configuration"

dpkg -r borderscan >>"$scratch/dpkg-install.log" 2>&1 || fail "dpkg -r failed"
[[ -f /etc/borderscan/borderscand.toml && ! -e /usr/bin/borderscand ]] || fail "remove must keep the conffile and drop the programs"
dpkg -P borderscan >>"$scratch/dpkg-install.log" 2>&1 || fail "dpkg -P failed"
[[ ! -e /etc/borderscan/borderscand.toml ]] || fail "purge kept the configuration"
[[ -f /var/lib/borderscan/borderscan.db ]] || fail "purge deleted the case records in /var/lib/borderscan"
echo "dpkg -i, reinstall, remove and purge behaved"
