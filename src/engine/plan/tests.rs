use std::path::{Path, PathBuf};

use super::*;
use crate::config::{Config, MountFlagsMode, Needed, PathRule, RestartPolicy};
use crate::engine::dropin;
use crate::engine::observe::{
    Facts, HostFacts, OwnDropIn, OwnState, PathFacts, RuntimeView, SystemdInfo, UnitFacts, UnitFile,
};
use crate::node::mountinfo::{MountSummary, Propagation};
use crate::node::systemd::UnitProps;
use crate::node::unitfile::{MS_SHARED, MS_SLAVE};

const OWN: &str = "/etc/systemd/system/docker.service.d/90-mountprop.conf";
const FRAGMENT: &str = "/lib/systemd/system/docker.service";

fn shared(g: u64) -> Propagation {
    Propagation {
        shared: Some(g),
        ..Default::default()
    }
}
fn slave(m: u64) -> Propagation {
    Propagation {
        master: Some(m),
        ..Default::default()
    }
}
fn private() -> Propagation {
    Propagation::default()
}

fn mount(id: u64, mp: &str, propagation: Propagation) -> MountSummary {
    MountSummary {
        id,
        mount_point: mp.into(),
        fstype: "ext4".into(),
        propagation,
    }
}

fn path_facts(path: &str, needs: Needed, m: MountSummary) -> PathFacts {
    PathFacts {
        rule: PathRule {
            path: path.into(),
            propagation: needs,
            remediate: true,
        },
        mount: m,
    }
}

fn facts(version: u32) -> Facts {
    Facts {
        scope: crate::engine::observe::Scope::Everything,
        systemd: SystemdInfo {
            version_string: format!("{version}.1-1"),
            version: Some(version),
            virtualization: String::new(),
        },
        host: HostFacts {
            own_namespace: Some(false),
            first_mount: Some(27),
            container: None,
            paths: vec![path_facts("/", Needed::Shared, mount(43, "/", shared(1)))],
            points: vec![crate::engine::observe::Point {
                path: "/".into(),
                mount: mount(43, "/", shared(1)),
                exists: true,
            }],
        },
        units: Vec::new(),
        kubelet: None,
        image: None,
        probe: None,
        containers: Default::default(),
        container_errors: Vec::new(),
        discovery: None,
    }
}

fn image(service: crate::node::image::ServiceInstall) -> Facts {
    let mut f = facts(252);
    f.host.paths.clear();
    f.host.points.clear();
    f.image = Some(crate::engine::observe::ImageFacts {
        root: "/img".into(),
        service,
    });
    f
}

fn installed(enabled: bool) -> crate::node::image::ServiceInstall {
    crate::node::image::ServiceInstall {
        unit: "mountprop.service".into(),
        fragment: Some("/lib/systemd/system/mountprop.service".into()),
        links: vec![crate::node::image::WantsLink {
            dir: "etc/systemd/system/multi-user.target.wants".into(),
            target: enabled.then(|| "/lib/systemd/system/mountprop.service".into()),
        }],
    }
}

fn file(path: &str, text: &str, loaded: bool) -> UnitFile {
    UnitFile::from_read(Path::new(path), Ok(text.as_bytes().to_vec()), loaded, path == OWN)
}

/// docker.service as an old package shipped it: `MountFlags=slave` on line 5 of the fragment,
/// loaded, no drop-in yet, not running.
fn old_docker() -> UnitFacts {
    UnitFacts {
        name: "docker.service".into(),
        props: UnitProps {
            load_state: "loaded".into(),
            active_state: "inactive".into(),
            sub_state: "dead".into(),
            fragment_path: Some(FRAGMENT.into()),
            mount_flags: Some(MS_SLAVE),
            ..Default::default()
        },
        own: OwnDropIn {
            path: OWN.into(),
            state: OwnState::Missing,
        },
        files: vec![
            file(FRAGMENT, "[Unit]\nDescription=d\n\n[Service]\nMountFlags=slave\n", true),
            UnitFile::own_missing(OWN.into(), false),
        ],
        runtime: None,
        found_by: None,
    }
}

/// After mountprop's drop-in is written and loaded.
fn fixed_docker() -> UnitFacts {
    let mut u = old_docker();
    let text = dropin::render(&dropin::choose(MountFlagsMode::Auto, Some(252)));
    u.own.state = OwnState::Ours(text.clone());
    u.files[1] = file(OWN, &text, true);
    u.props.dropin_paths = vec![OWN.into()];
    u.props.mount_flags = Some(MS_SHARED);
    u
}

fn running(mut u: UnitFacts, view: RuntimeView) -> UnitFacts {
    u.props.main_pid = view.pid;
    u.props.active_state = "active".into();
    u.runtime = Some(view);
    u
}

fn own_ns(pid: u32, root: Propagation) -> RuntimeView {
    RuntimeView {
        pid,
        same_ns_as_host: false,
        paths: vec![Some(mount(117, "/", root))],
        points: vec![Some(mount(117, "/", root))],
        error: None,
        first_mount: None,
    }
}

fn host_ns(pid: u32) -> RuntimeView {
    RuntimeView {
        pid,
        same_ns_as_host: true,
        paths: vec![Some(mount(43, "/", shared(1)))],
        points: vec![Some(mount(43, "/", shared(1)))],
        error: None,
        first_mount: Some(27),
    }
}

fn cfg() -> Config {
    Config::default()
}

fn with_units(mut f: Facts, units: Vec<UnitFacts>) -> Facts {
    f.units = units;
    f
}

fn verdict<'a>(p: &'a Plan, subject: &str) -> &'a Verdict {
    p.verdicts
        .iter()
        .find(|v| v.subject == subject)
        .unwrap_or_else(|| panic!("no verdict for {subject}: {p:#?}"))
}

fn kinds(p: &Plan) -> Vec<&'static str> {
    p.actions
        .iter()
        .map(|a| match a {
            Action::MakeShared { .. } => "make-shared",
            Action::WriteDropIn { .. } => "write",
            Action::Reload { .. } => "reload",
            Action::Restart { .. } => "restart",
            Action::MarkNeedsRestart { .. } => "mark",
            Action::Enable { .. } => "enable",
        })
        .collect()
}

// ---- paths ----

#[test]
fn shared_root_is_ok_and_needs_nothing() {
    let p = plan(&facts(252), &cfg());
    assert_eq!(verdict(&p, "/").status, Status::Ok);
    assert!(verdict(&p, "/").detail.starts_with("shared:1 (mount 43 on /"));
    assert!(p.actions.is_empty());
    assert_eq!(p.status().exit_code(), 0);
}

#[test]
fn private_root_is_made_rshared_when_allowed() {
    let mut f = facts(252);
    f.host.paths[0].mount.propagation = private();
    let p = plan(&f, &cfg());
    let v = verdict(&p, "/");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail.starts_with("private (mount 43 on /, ext4); needs shared"),
        "{}",
        v.detail
    );
    assert_eq!(
        p.actions,
        [Action::MakeShared {
            mount_point: "/".into(),
            for_paths: vec!["/".into()]
        }]
    );
    assert_eq!(p.status().exit_code(), 1);
}

#[test]
fn private_root_with_remediation_off_is_only_reported() {
    let mut f = facts(252);
    f.host.paths[0].mount.propagation = private();
    f.host.paths[0].rule.remediate = false;
    let p = plan(&f, &cfg());
    assert_eq!(verdict(&p, "/").status, Status::Drift);
    assert!(verdict(&p, "/").detail.contains("remediate_paths = false"));
    assert!(p.actions.is_empty());
}

#[test]
fn mountprop_in_its_own_namespace_cannot_remount_the_host() {
    let mut f = facts(252);
    f.host.paths[0].mount.propagation = private();
    f.host.own_namespace = Some(true);
    let p = plan(&f, &cfg());
    assert!(verdict(&p, "/").detail.contains("its own mount namespace"));
    assert!(p.actions.is_empty());
}

#[test]
fn a_container_host_is_named_as_the_reason() {
    let mut f = facts(252);
    f.host.paths[0].mount.propagation = private();
    f.host.container = Some("lxc".into());
    let p = plan(&f, &cfg());
    assert!(
        verdict(&p, "/")
            .detail
            .contains("this host is a container (lxc), where systemd leaves / private on purpose")
    );
}

#[test]
fn slave_need_wants_a_mount_that_passes_mounts_on() {
    let mut f = facts(252);
    f.host.paths.push(path_facts(
        "/var/lib/kubelet",
        Needed::Slave,
        mount(90, "/var/lib/kubelet", slave(1)),
    ));
    // Slave-only: it receives from its master and passes nothing on.
    let p = plan(&f, &cfg());
    assert_eq!(verdict(&p, "/var/lib/kubelet").status, Status::Drift);
    assert_eq!(
        p.actions,
        [Action::MakeShared {
            mount_point: "/var/lib/kubelet".into(),
            for_paths: vec!["/var/lib/kubelet".into()]
        }]
    );
    for prop in [
        shared(9),
        Propagation {
            shared: Some(9),
            master: Some(1),
            ..Default::default()
        },
    ] {
        f.host.paths[1].mount.propagation = prop;
        assert_eq!(verdict(&plan(&f, &cfg()), "/var/lib/kubelet").status, Status::Ok);
    }
    f.host.paths[1].mount.propagation = private();
    assert_eq!(verdict(&plan(&f, &cfg()), "/var/lib/kubelet").status, Status::Drift);
}

#[test]
fn one_recursive_fix_covers_paths_below_it() {
    let mut f = facts(252);
    f.host.paths[0].mount.propagation = private();
    f.host.paths.push(path_facts(
        "/var/lib/kubelet",
        Needed::Shared,
        mount(90, "/var/lib/kubelet", private()),
    ));
    f.host
        .paths
        .push(path_facts("/srv", Needed::Shared, mount(43, "/", private())));
    let p = plan(&f, &cfg());
    assert_eq!(
        p.actions,
        [Action::MakeShared {
            mount_point: "/".into(),
            for_paths: vec!["/".into(), "/srv".into(), "/var/lib/kubelet".into()]
        }]
    );
}

// ---- units: load states ----

#[test]
fn absent_and_masked_units_are_skipped_not_failed() {
    let mut gone = old_docker();
    gone.props = UnitProps {
        load_state: "not-found".into(),
        ..Default::default()
    };
    let mut masked = old_docker();
    masked.name = "crio.service".into();
    masked.props = UnitProps {
        load_state: "masked".into(),
        ..Default::default()
    };
    let p = plan(&with_units(facts(252), vec![gone, masked]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::NotInstalled);
    assert_eq!(verdict(&p, "docker.service").detail, "not installed");
    assert_eq!(verdict(&p, "docker.service").short, "not installed");
    assert_eq!(verdict(&p, "crio.service").status, Status::NotInstalled);
    assert!(p.actions.is_empty());
    assert_eq!(p.status().exit_code(), 0);
}

#[test]
fn a_unit_that_fails_to_load_is_drift_with_systemds_reason() {
    let mut u = old_docker();
    u.props.load_state = "bad-setting".into();
    u.props.load_error = Some("Unit configuration has fatal error (org.freedesktop.systemd1.BadSetting)".into());
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail
            .starts_with("unit failed to load (bad-setting): Unit configuration has fatal error"),
        "{}",
        v.detail
    );
    assert!(p.actions.is_empty());
}

// ---- units: configuration ----

#[test]
fn old_docker_not_running_gets_the_dropin_and_one_reload() {
    let p = plan(&with_units(facts(252), vec![old_docker()]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail
            .starts_with(&format!("MountFlags=slave (set in {FRAGMENT}:5); apply writes")),
        "{}",
        v.detail
    );
    assert_eq!(
        v.blame,
        Some(Blame {
            file: FRAGMENT.into(),
            line: 5,
            setting: "MountFlags=slave".into()
        })
    );
    assert_eq!(kinds(&p), ["write", "reload"]);
    match &p.actions[0] {
        Action::WriteDropIn { path, content, .. } => {
            assert_eq!(path, Path::new(OWN));
            assert!(content.ends_with("[Service]\nMountFlags=shared\n"));
        }
        a => panic!("{a:?}"),
    }
    assert_eq!(
        p.actions[1],
        Action::Reload {
            units: vec!["docker.service".into()]
        }
    );
}

#[test]
fn old_docker_running_with_restart_never_is_marked_not_restarted() {
    let u = running(old_docker(), own_ns(66, slave(1)));
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail
            .contains("MainPID 66 has its own mount namespace where / is slave (master:1)"),
        "{}",
        v.detail
    );
    assert!(
        v.detail.contains("systemctl reload-or-restart --marked"),
        "{}",
        v.detail
    );
    assert_eq!(kinds(&p), ["write", "reload", "mark"]);
}

#[test]
fn old_docker_running_with_restart_always_is_restarted_after_the_reload() {
    let u = running(old_docker(), own_ns(66, slave(1)));
    let c = Config {
        restart: RestartPolicy::Always,
        ..cfg()
    };
    let mut f = with_units(facts(252), vec![u]);
    f.host.paths[0].mount.propagation = private();
    let p = plan(&f, &c);
    assert_eq!(kinds(&p), ["make-shared", "write", "reload", "restart"]);
    assert!(verdict(&p, "docker.service").detail.contains("apply restarts it"));
    // With / private on the host the runtime's namespace cannot be a peer of it.
    assert!(
        verdict(&p, "docker.service").detail.contains("the host's / is private"),
        "{}",
        verdict(&p, "docker.service").detail
    );
}

#[test]
fn fixed_docker_in_the_host_namespace_is_ok_and_idle() {
    let u = running(fixed_docker(), host_ns(80));
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Ok);
    assert_eq!(
        v.detail,
        "MountFlags=shared; MainPID 80 runs in the host's mount namespace"
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(p.status().exit_code(), 0);
}

#[test]
fn fixed_docker_not_running_is_ok() {
    let p = plan(&with_units(facts(252), vec![fixed_docker()]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Ok);
    assert!(
        v.detail.contains("not running: takes effect at its next start"),
        "{}",
        v.detail
    );
    assert!(p.actions.is_empty());
}

#[test]
fn a_dropin_on_disk_that_systemd_has_not_loaded_needs_only_a_reload() {
    let mut u = fixed_docker();
    u.props.dropin_paths.clear();
    u.props.mount_flags = Some(MS_SLAVE);
    u.files[1].loaded = false;
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(kinds(&p), ["reload"]);
    assert!(
        verdict(&p, "docker.service")
            .detail
            .contains("waiting for daemon-reload")
    );
}

#[test]
fn an_outdated_dropin_of_ours_is_rewritten() {
    let mut u = fixed_docker();
    u.own.state = OwnState::Ours(format!("{}\n[Service]\nMountFlags=\n", dropin::HEADER));
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(kinds(&p), ["write", "reload"]);
    assert_eq!(
        verdict(&p, "docker.service").status,
        Status::Ok,
        "MountFlags=shared is loaded and fine meanwhile"
    );
}

#[test]
fn an_unset_flag_is_fine_on_new_systemd_and_still_gets_pinned() {
    let mut u = old_docker();
    u.files[0] = file(FRAGMENT, "[Service]\nExecStart=/usr/bin/dockerd\n", true);
    u.props.mount_flags = Some(0);
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Ok);
    assert!(v.detail.starts_with("MountFlags unset;"), "{}", v.detail);
    assert!(
        v.detail.ends_with("apply pins it with mountprop's drop-in"),
        "{}",
        v.detail
    );
    assert_eq!(kinds(&p), ["write", "reload"]);
}

#[test]
fn a_foreign_file_with_our_name_is_left_alone() {
    let mut u = old_docker();
    u.own.state = OwnState::Foreign;
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail.contains("was not written by mountprop; left alone"),
        "{}",
        v.detail
    );
    assert!(p.actions.is_empty());
}

#[test]
fn a_refused_dropin_dir_is_reported() {
    let mut u = old_docker();
    u.own.state = OwnState::Refused("/etc/systemd/system/docker.service.d is a symlink; refusing to follow it".into());
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::Drift);
    assert!(verdict(&p, "docker.service").detail.contains("is a symlink"));
    assert!(p.actions.is_empty());
}

#[test]
fn a_later_dropin_that_overrides_ours_is_named_and_not_fought() {
    let mut u = fixed_docker();
    let site = "/etc/systemd/system/docker.service.d/zz-site.conf";
    u.files
        .push(file(site, "[Service]\n# site policy\nMountFlags=slave\n", true));
    u.props.dropin_paths.push(site.into());
    u.props.mount_flags = Some(MS_SLAVE);
    let u = running(u, own_ns(66, slave(1)));
    let c = Config {
        restart: RestartPolicy::Always,
        ..cfg()
    };
    let p = plan(&with_units(facts(252), vec![u]), &c);
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail.starts_with(&format!(
            "overridden by {site}:3 (MountFlags=slave), which systemd applies after {OWN}"
        )),
        "{}",
        v.detail
    );
    assert_eq!(
        v.blame.as_ref().map(|b| (b.file.as_path(), b.line)),
        Some((Path::new(site), 3))
    );
    assert!(p.actions.is_empty(), "no restart that could not help: {:?}", p.actions);
}

#[test]
fn an_earlier_dropin_does_not_override_ours() {
    let mut u = fixed_docker();
    let early = "/etc/systemd/system/docker.service.d/10-old.conf";
    u.files.insert(1, file(early, "[Service]\nMountFlags=slave\n", true));
    u.props.dropin_paths.insert(0, early.into());
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::Ok);
}

#[test]
fn systemd_240_gets_the_empty_reset_and_shared_there_is_drift() {
    let mut u = old_docker();
    u.props.mount_flags = Some(MS_SHARED);
    u.files[0] = file(FRAGMENT, "[Service]\nMountFlags=shared\n", true);
    let p = plan(&with_units(facts(240), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift, "{}", v.detail);
    match &p.actions[0] {
        Action::WriteDropIn { content, .. } => assert!(content.ends_with("[Service]\nMountFlags=\n"), "{content}"),
        a => panic!("{a:?}"),
    }
}

#[test]
fn unknown_mount_flag_bits_are_unknown() {
    let mut u = old_docker();
    u.props.mount_flags = Some(3);
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::Unknown);
    assert_eq!(p.status().exit_code(), 2);
}

#[test]
fn need_daemon_reload_for_someone_elses_edit_is_left_to_them() {
    let mut u = running(fixed_docker(), host_ns(80));
    u.props.need_daemon_reload = true;
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert!(p.actions.is_empty());
    assert!(p.notes.iter().any(|n| n.contains("NeedDaemonReload")), "{:?}", p.notes);
}

#[test]
fn need_daemon_reload_after_our_interrupted_run_is_reloaded() {
    // Our file has the right content and is listed, but systemd still has the old value.
    let mut u = fixed_docker();
    u.props.need_daemon_reload = true;
    u.props.mount_flags = Some(MS_SLAVE);
    let p = plan(&with_units(facts(252), vec![u]), &cfg());
    assert_eq!(kinds(&p), ["reload"]);
}

// ---- units: what the runtime really got ----

#[test]
fn running_since_before_the_fix_is_restart_pending_and_marked_once() {
    let u = running(fixed_docker(), own_ns(66, slave(1)));
    let p = plan(&with_units(facts(252), vec![u.clone()]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::RestartPending);
    assert!(
        v.detail
            .starts_with("restart pending: MountFlags=shared; but MainPID 66"),
        "{}",
        v.detail
    );
    assert_eq!(kinds(&p), ["mark"]);
    assert_eq!(p.status().exit_code(), 1);

    let mut marked = u;
    marked.props.markers = vec!["needs-restart".into()];
    let p = plan(&with_units(facts(252), vec![marked]), &cfg());
    assert!(p.actions.is_empty());
    assert_eq!(verdict(&p, "docker.service").status, Status::RestartPending);
}

#[test]
fn before_248_there_are_no_markers() {
    let u = running(fixed_docker(), own_ns(66, slave(1)));
    let p = plan(&with_units(facts(245), vec![u]), &cfg());
    assert!(p.actions.is_empty());
    assert!(!verdict(&p, "docker.service").detail.contains("--marked"));
}

#[test]
fn a_peer_namespace_is_as_good_as_the_hosts() {
    // Old systemd: MountFlags=shared gives a namespace whose / stays in the host's peer group.
    let u = running(fixed_docker(), own_ns(66, shared(1)));
    let p = plan(&with_units(facts(237), vec![u]), &cfg());
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Ok, "{}", v.detail);
    assert!(v.detail.contains("/ is a peer of the host's (shared:1)"));
}

#[test]
fn shared_and_slave_is_one_way_and_not_enough_for_bidirectional() {
    // What MountFlags=shared plus PrivateTmp= gives: shared:37 master:1.
    let both = Propagation {
        shared: Some(37),
        master: Some(1),
        ..Default::default()
    };
    let u = running(fixed_docker(), own_ns(66, both));
    let p = plan(&with_units(facts(252), vec![u.clone()]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::RestartPending);
    assert!(
        verdict(&p, "docker.service")
            .detail
            .contains("only receives from the host")
    );
    // A HostToContainer-only node is content with it.
    let c = Config {
        mount_flags: MountFlagsMode::Slave,
        ..cfg()
    };
    let mut u = u;
    u.props.mount_flags = Some(MS_SLAVE);
    u.own.state = OwnState::Ours(dropin::render(&dropin::choose(MountFlagsMode::Slave, Some(252))));
    u.files[1] = file(
        OWN,
        &dropin::render(&dropin::choose(MountFlagsMode::Slave, Some(252))),
        true,
    );
    let p = plan(&with_units(facts(252), vec![u]), &c);
    assert_eq!(
        verdict(&p, "docker.service").status,
        Status::Ok,
        "{}",
        verdict(&p, "docker.service").detail
    );
}

#[test]
fn a_runtime_that_cannot_be_inspected_is_unknown() {
    let mut view = own_ns(66, slave(1));
    view.error = Some("permission denied".into());
    let p = plan(&with_units(facts(252), vec![running(fixed_docker(), view)]), &cfg());
    assert_eq!(verdict(&p, "docker.service").status, Status::Unknown);
    assert!(
        verdict(&p, "docker.service")
            .detail
            .contains("cannot inspect MainPID 66: permission denied")
    );
    assert_eq!(p.status().exit_code(), 2);
}

#[test]
fn unknown_version_is_noted_and_shared_is_written() {
    let mut f = with_units(facts(252), vec![old_docker()]);
    f.systemd.version = None;
    let p = plan(&f, &cfg());
    assert!(p.notes.iter().any(|n| n.contains("could not tell the systemd version")));
    assert!(matches!(&p.actions[0], Action::WriteDropIn { content, .. } if content.ends_with("MountFlags=shared\n")));
}

#[test]
fn several_units_share_one_reload_and_actions_come_in_order() {
    let mut b = old_docker();
    b.name = "containerd.service".into();
    b.own.path = PathBuf::from("/etc/systemd/system/containerd.service.d/90-mountprop.conf");
    b.files[1].path = b.own.path.clone();
    let a = running(old_docker(), own_ns(66, slave(1)));
    let c = Config {
        restart: RestartPolicy::Always,
        ..cfg()
    };
    let mut f = with_units(facts(252), vec![a, b]);
    f.host.paths[0].mount.propagation = private();
    let p = plan(&f, &c);
    assert_eq!(kinds(&p), ["make-shared", "write", "write", "reload", "restart"]);
    assert_eq!(
        p.actions[3],
        Action::Reload {
            units: vec!["docker.service".into(), "containerd.service".into()]
        }
    );
}

// ---- image trees (--root) ----

#[test]
fn image_writes_without_a_reload_and_enables_the_service() {
    let f = with_units(image(installed(false)), vec![old_docker()]);
    let p = plan(&f, &cfg());
    assert_eq!(kinds(&p), ["enable", "write"]);
    assert_eq!(
        p.actions[0],
        Action::Enable {
            dir: "/img/etc/systemd/system/multi-user.target.wants".into(),
            name: "mountprop.service".into(),
            target: "/lib/systemd/system/mountprop.service".into(),
        }
    );
    assert_eq!(verdict(&p, "mountprop.service").status, Status::Drift);
    assert!(p.notes.iter().any(|n| n.contains("paths are not checked")));
    // Once enabled and written: nothing to do.
    let mut u = old_docker();
    let text = dropin::render(&dropin::choose(MountFlagsMode::Auto, Some(252)));
    u.own.state = OwnState::Ours(text.clone());
    u.files[1] = file(OWN, &text, true);
    u.props.dropin_paths = vec![OWN.into()];
    u.props.mount_flags = Some(MS_SHARED);
    let p = plan(&with_units(image(installed(true)), vec![u]), &cfg());
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(verdict(&p, "mountprop.service").status, Status::Ok);
    assert_eq!(p.status(), Status::Ok);
}

#[test]
fn image_writes_ahead_for_a_runtime_not_yet_installed() {
    let mut gone = old_docker();
    gone.props = UnitProps {
        load_state: "not-found".into(),
        ..Default::default()
    };
    gone.files.clear();
    let p = plan(&with_units(image(installed(true)), vec![gone.clone()]), &cfg());
    assert_eq!(kinds(&p), ["write"]);
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::NotInstalled);
    assert!(v.detail.contains("writes mountprop's drop-in ahead"), "{}", v.detail);
    assert_eq!(p.status(), Status::Ok);
    // Live, the same unit is just absent.
    let p = plan(&with_units(facts(252), vec![gone]), &cfg());
    assert!(p.actions.is_empty());
}

#[test]
fn image_without_mountprop_installed_is_drift() {
    let p = plan(
        &image(crate::node::image::ServiceInstall {
            unit: "mountprop.service".into(),
            fragment: None,
            links: vec![],
        }),
        &cfg(),
    );
    let v = verdict(&p, "mountprop.service");
    assert_eq!(v.status, Status::Drift);
    assert!(v.detail.starts_with("not installed in the image"), "{}", v.detail);
}

// ---- Kubernetes mountPropagation modes ----

use crate::config::KubeMode;
use crate::engine::modes::{Decider, Judgement, ModeVerdict, NotJudged, ProbeResult};
use crate::engine::observe::{KubeletFacts, Point};

fn point(path: &str, m: MountSummary) -> Point {
    Point {
        path: path.into(),
        mount: m,
        exists: true,
    }
}

/// `/` and the kubelet's root, both on the shared root mount.
fn kube_facts() -> Facts {
    let mut f = facts(252);
    f.host.points = vec![
        point("/", mount(43, "/", shared(1))),
        point("/var/lib/kubelet", mount(43, "/", shared(1))),
    ];
    f
}

/// A runtime namespace whose mounts at both points have this propagation.
fn own_ns_at_points(pid: u32, prop: Propagation) -> RuntimeView {
    let mut v = own_ns(pid, prop);
    v.points = vec![Some(mount(117, "/", prop)), Some(mount(117, "/", prop))];
    v
}

fn mode(p: &Plan, m: KubeMode) -> &ModeVerdict {
    p.modes.iter().find(|v| v.mode == m).expect("every mode is judged")
}

fn works(p: &Plan) -> [bool; 3] {
    [KubeMode::None, KubeMode::HostToContainer, KubeMode::Bidirectional].map(|m| mode(p, m).works())
}

#[test]
fn modes_all_work_with_a_shared_root_and_the_runtime_in_the_host_namespace() {
    let f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, true, true]);
    let b = mode(&p, KubeMode::Bidirectional);
    assert_eq!(b.decided_by, Decider::Flags);
    assert_eq!(
        b.reason,
        "/ shared:1, /var/lib/kubelet shared:1; docker.service in the host's namespace"
    );
    assert_eq!(p.status(), Status::Ok);
}

#[test]
fn modes_a_slave_runtime_gets_host_to_container_only_and_the_unit_file_line_is_named() {
    // Layout (a): / shared, old docker running in its own slave namespace.
    let mut u = running(old_docker(), own_ns_at_points(66, slave(1)));
    u.props.active_state = "active".into();
    let p = plan(&with_units(kube_facts(), vec![u]), &cfg());
    assert_eq!(works(&p), [true, true, false]);
    let b = mode(&p, KubeMode::Bidirectional);
    assert_eq!(
        b.reason,
        "docker.service: its namespace at / only receives from the host (MountFlags=slave at /lib/systemd/system/docker.service:5)"
    );
    assert_eq!(b.blame.as_ref().map(|b| b.subject.as_str()), Some("docker.service"));
    // The unit's own verdict already says drift; the mode does not make it worse.
    assert_eq!(p.status(), Status::Drift);
}

#[test]
fn modes_a_private_root_breaks_both_and_names_the_mount() {
    // Layout (b).
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.host.paths[0].mount.propagation = private();
    for p in &mut f.host.points {
        p.mount.propagation = private();
    }
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, false, false]);
    for m in [KubeMode::HostToContainer, KubeMode::Bidirectional] {
        assert_eq!(mode(&p, m).reason, "/ is on mount 43 (/, ext4), which is private");
    }
}

#[test]
fn modes_a_private_kubelet_mount_is_drift_even_when_every_verdict_is_ok() {
    // Layout (d): / shared, /var/lib/kubelet a separate private mount, not in [[paths]].
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.host.points[1].mount = mount(90, "/var/lib/kubelet", private());
    f.host.points[1].mount.fstype = "tmpfs".into();
    let p = plan(&f, &cfg());
    assert!(p.verdicts.iter().all(|v| v.status == Status::Ok), "{:#?}", p.verdicts);
    assert_eq!(works(&p), [true, false, false]);
    // No kubelet runs: it will make its root rshared when it starts, so this is a finding about
    // before it starts.
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).reason,
        "/var/lib/kubelet is on mount 90 (/var/lib/kubelet, tmpfs), which is private; no kubelet runs: the kubelet makes its root rshared when it starts, in its own namespace, which reaches the host's mount only if that is the host's"
    );
    assert_eq!(p.status(), Status::Drift);
    // Under a running kubelet it is another finding: it was changed since the kubelet started,
    // or the kubelet's namespace is not the host's.
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(host_ns(70)),
        found: None,
    });
    let p = plan(&f, &cfg());
    assert!(
        mode(&p, KubeMode::Bidirectional).reason.ends_with(
            "which is private; so under the running kubelet (pid 70), which made its root rshared when it started: it was changed since, or the kubelet's namespace is not the host's"
        ),
        "{}",
        mode(&p, KubeMode::Bidirectional).reason
    );
    // `/` is no kubelet root: said plainly.
    f.host.points[0].mount.propagation = private();
    let p = plan(&f, &cfg());
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).reason,
        "/ is on mount 43 (/, ext4), which is private"
    );
}

#[test]
fn modes_a_slave_only_kubelet_mount_breaks_host_to_container_too() {
    // `mount --bind K K && mount --make-slave K`: the CRI accepts HostToContainer there, but a
    // mount the kubelet or the host makes on K has no peer to go to, so no container sees it.
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.host.points[1].mount = mount(90, "/var/lib/kubelet", slave(1));
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, false, false]);
    let h = mode(&p, KubeMode::HostToContainer);
    assert!(
        h.reason.starts_with(
            "/var/lib/kubelet is on mount 90 (/var/lib/kubelet, ext4), which is only a slave (master:1): it receives from its master and passes nothing on"
        ),
        "{}",
        h.reason
    );
    assert_eq!(h.blame.as_ref().map(|b| b.subject.as_str()), Some("/var/lib/kubelet"));
    let mut c = cfg();
    c.required_mode = KubeMode::HostToContainer;
    assert_eq!(
        plan(&f, &c).status(),
        Status::Drift,
        "not compliant for HostToContainer"
    );
    // Shared as well as a slave (make-shared on top): it passes mounts on again, both ways.
    f.host.points[1].mount.propagation = Propagation {
        shared: Some(409),
        master: Some(1),
        ..Default::default()
    };
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, true, true]);
    assert_eq!(p.status(), Status::Ok);
}

#[test]
fn modes_a_pending_restart_stays_restart_pending() {
    // Configured right, but the running process keeps its old slave namespace.
    let f = with_units(
        kube_facts(),
        vec![running(fixed_docker(), own_ns_at_points(66, slave(1)))],
    );
    let p = plan(&f, &cfg());
    assert!(!mode(&p, KubeMode::Bidirectional).works());
    assert_eq!(verdict(&p, "docker.service").status, Status::RestartPending);
    assert_eq!(p.status(), Status::RestartPending);
}

#[test]
fn modes_a_stopped_runtime_is_judged_by_where_it_will_start() {
    let p = plan(&with_units(kube_facts(), vec![old_docker()]), &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(!b.works());
    assert!(
        b.reason
            .starts_with("docker.service: when it starts, its namespace at / only receives from the host"),
        "{}",
        b.reason
    );
    assert!(b.blame.as_ref().is_some_and(|b| b.predicted));
    assert!(mode(&p, KubeMode::HostToContainer).works());
    // Fixed: it will start in the host's namespace.
    let p = plan(&with_units(kube_facts(), vec![fixed_docker()]), &cfg());
    assert_eq!(works(&p), [true, true, true]);
    assert!(
        mode(&p, KubeMode::Bidirectional)
            .reason
            .contains("docker.service will start in the host's namespace")
    );
}

#[test]
fn modes_on_systemd_240_shared_means_a_slave_namespace_at_next_start() {
    let mut f = with_units(kube_facts(), vec![fixed_docker()]);
    f.systemd.version = Some(240);
    let p = plan(&f, &cfg());
    assert!(mode(&p, KubeMode::HostToContainer).works());
    assert!(!mode(&p, KubeMode::Bidirectional).works());
}

#[test]
fn modes_a_host_to_container_node_is_compliant_without_bidirectional() {
    let mut c = cfg();
    c.mount_flags = MountFlagsMode::Slave;
    c.required_mode = KubeMode::HostToContainer;
    let f = with_units(
        kube_facts(),
        vec![running(old_docker(), own_ns_at_points(66, slave(1)))],
    );
    let p = plan(&f, &c);
    assert_eq!(works(&p), [true, true, false]);
    assert_eq!(p.status(), Status::Ok, "{:#?}", p.verdicts);
}

#[test]
fn modes_a_kubelet_in_a_slave_namespace_breaks_both_modes() {
    // Pod volumes are mounted by the kubelet in its own namespace: from a slave they reach no
    // runtime, so not even HostToContainer works.
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(own_ns_at_points(77, slave(1))),
        found: None,
    });
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, false, false]);
    assert_eq!(
        mode(&p, KubeMode::HostToContainer).reason,
        "kubelet.service: its namespace at / only receives from the host, so the volumes the kubelet mounts there reach no container"
    );
    assert_eq!(p.status(), Status::Drift);
    // A kubelet that is a peer of the host's mounts is as good as one in the host's namespace.
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(own_ns_at_points(77, shared(1))),
        found: None,
    });
    assert_eq!(works(&plan(&f, &cfg())), [true, true, true]);
}

#[test]
fn modes_a_slave_only_host_mount_passes_nothing_on_even_to_a_namespace_with_its_master() {
    // Today's mounts at / are slaves of group 5 (a node that is itself a container, say): what
    // the host or the kubelet mounts there goes nowhere.
    let mut f = with_units(
        kube_facts(),
        vec![running(fixed_docker(), own_ns_at_points(66, slave(5)))],
    );
    for p in &mut f.host.points {
        p.mount.propagation = slave(5);
    }
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, false, false]);
    assert!(
        mode(&p, KubeMode::HostToContainer)
            .reason
            .contains("which is only a slave (master:5)")
    );
}

#[test]
fn modes_a_shared_and_slave_runtime_receives_but_is_never_called_a_peer() {
    // A namespace systemd sets up for a unit's sandboxing: `shared:20 master:1`.
    let both = Propagation {
        shared: Some(20),
        master: Some(1),
        ..Default::default()
    };
    let f = with_units(kube_facts(), vec![running(fixed_docker(), own_ns_at_points(66, both))]);
    let p = plan(&f, &cfg());
    assert_eq!(works(&p), [true, true, false]);
    let h = mode(&p, KubeMode::HostToContainer);
    assert!(
        h.reason.contains("docker.service receives the host's mounts (a slave)"),
        "{}",
        h.reason
    );
    assert!(!h.reason.contains("peer"), "{}", h.reason);
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).reason,
        "docker.service: its namespace at / only receives from the host"
    );
    // A slave seen through propagate_from (its master is not visible there) receives too.
    let from = Propagation {
        master: Some(7),
        propagate_from: Some(1),
        ..Default::default()
    };
    let f = with_units(kube_facts(), vec![running(fixed_docker(), own_ns_at_points(66, from))]);
    assert_eq!(works(&plan(&f, &cfg())), [true, true, false]);
    // A shared mount in an unrelated group receives nothing.
    let f = with_units(
        kube_facts(),
        vec![running(fixed_docker(), own_ns_at_points(66, shared(20)))],
    );
    assert_eq!(works(&plan(&f, &cfg())), [true, false, false]);
}

#[test]
fn modes_are_not_judged_in_an_image_tree() {
    let p = plan(&image(installed(true)), &cfg());
    // Nothing is mounted in a tree: only None (which needs nothing) may say it works.
    assert_eq!(works(&p), [true, false, false]);
    for m in [KubeMode::HostToContainer, KubeMode::Bidirectional] {
        let v = mode(&p, m);
        assert_eq!(v.judgement, Judgement::NotJudged(NotJudged::ImageTree), "{v:?}");
        assert!(!v.works() && !v.broken(), "{v:?}");
        assert_eq!(v.reason, "an image tree: nothing is mounted");
        assert_eq!(
            v.to_string(),
            format!("{m} not judged: an image tree: nothing is mounted")
        );
        assert_eq!(v.judgement.word(), "not judged");
    }
    // Not judged is not broken: the tree's own verdicts decide its status.
    assert_eq!(
        crate::engine::modes::status(&p.modes, KubeMode::Bidirectional, &p.verdicts),
        crate::engine::verdict::Status::Ok
    );
    // The one line (--oneline, STATUS, NPD) says so too, never "works".
    let line = crate::engine::summary::one_line(&p.verdicts, &p.modes, KubeMode::Bidirectional, &Default::default());
    assert!(line.starts_with("ok: "), "{line}");
    assert!(
        line.ends_with("; Bidirectional not judged (an image tree: nothing is mounted)"),
        "{line}"
    );
}

#[test]
fn a_mode_not_judged_serializes_as_works_null_and_judged_false() {
    let p = plan(&image(installed(true)), &cfg());
    let v = serde_json::to_value(mode(&p, KubeMode::Bidirectional)).unwrap();
    assert!(v["works"].is_null(), "{v}");
    assert_eq!(v["judged"], false);
    assert_eq!(v["not_judged"], "image-tree");
    let back: ModeVerdict = serde_json::from_value(v).unwrap();
    assert_eq!(&back, mode(&p, KubeMode::Bidirectional));
    // A judged mode: works is a bool, judged true, no not_judged.
    let v = serde_json::to_value(mode(&p, KubeMode::None)).unwrap();
    assert_eq!((&v["works"], &v["judged"]), (&true.into(), &true.into()));
    assert!(v.get("not_judged").is_none(), "{v}");
    // state.json from before `judged` existed still reads.
    let old: ModeVerdict =
        serde_json::from_str(r#"{"mode":"Bidirectional","works":false,"reason":"r","decided_by":"flags"}"#).unwrap();
    assert!(old.broken());
    // A document that says both "works" and "not judged" is refused, not guessed at.
    for bad in [
        r#"{"mode":"Bidirectional","works":true,"judged":false,"not_judged":"image-tree","reason":"r","decided_by":"flags"}"#,
        r#"{"mode":"Bidirectional","works":null,"judged":true,"reason":"r","decided_by":"flags"}"#,
        r#"{"mode":"Bidirectional","works":null,"reason":"r","decided_by":"flags"}"#,
    ] {
        assert!(serde_json::from_str::<ModeVerdict>(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_probe_decides_a_mode_the_flags_could_not_judge() {
    // No points to judge by the flags, but a conclusive probe: it decides, either way.
    let mut f = image(installed(true));
    f.probe = Some(vec![probe("docker.service", "/", Some(true), Some(true))]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert!(
        b.works() && b.decided_by == Decider::Probe && b.disagreement.is_none(),
        "{b:?}"
    );
    f.probe = Some(vec![probe("docker.service", "/", Some(true), Some(false))]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert!(b.broken() && b.blame.is_some() && b.disagreement.is_none(), "{b:?}");
    // An inconclusive probe leaves it not judged.
    f.probe = Some(vec![probe("docker.service", "/", None, None)]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert_eq!(b.judgement, Judgement::NotJudged(NotJudged::ImageTree), "{b:?}");
}

fn probe(subject: &str, point: &str, h2c: Option<bool>, c2h: Option<bool>) -> ProbeResult {
    ProbeResult {
        subject: subject.into(),
        point: point.into(),
        host_to_container: h2c,
        container_to_host: c2h,
        error: None,
    }
}

#[test]
fn modes_the_probe_overrides_the_flags_and_the_disagreement_is_said() {
    // Flags: a slave namespace, Bidirectional broken. The probe saw both directions work.
    let mut f = with_units(
        kube_facts(),
        vec![running(old_docker(), own_ns_at_points(66, slave(1)))],
    );
    f.probe = Some(vec![
        probe("docker.service", "/", Some(true), Some(true)),
        probe("docker.service", "/var/lib/kubelet", Some(true), Some(true)),
    ]);
    let p = plan(&f, &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(b.works());
    assert_eq!(b.decided_by, Decider::Probe);
    assert!(
        b.disagreement
            .as_deref()
            .is_some_and(|d| d.starts_with("the flags say it is broken (docker.service: its namespace at / only")),
        "{b:#?}"
    );

    // Flags: all well. The probe saw a mount made in the container stay there.
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.probe = Some(vec![
        probe("docker.service", "/", Some(true), Some(true)),
        probe("docker.service", "/var/lib/kubelet", Some(true), Some(false)),
    ]);
    let p = plan(&f, &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(!b.works());
    assert_eq!(
        b.reason,
        "docker.service at /var/lib/kubelet: a tmpfs mounted in its namespace did not appear on the host (live probe)"
    );
    assert!(
        b.disagreement
            .as_deref()
            .is_some_and(|d| d.starts_with("the flags say it works"))
    );
    assert!(mode(&p, KubeMode::HostToContainer).works());
    assert_eq!(mode(&p, KubeMode::HostToContainer).decided_by, Decider::Probe);
    assert_eq!(p.status(), Status::Drift);
}

#[test]
fn modes_the_probe_agreeing_confirms_and_an_inconclusive_one_leaves_the_flags() {
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.probe = Some(vec![probe("docker.service", "/", Some(true), Some(true))]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert!(b.works() && b.disagreement.is_none());
    assert!(
        b.reason
            .ends_with("the live probe saw mounts cross as needed (1 namespace at 1 point)"),
        "{}",
        b.reason
    );

    let mut r = probe("docker.service", "/", None, None);
    r.error = Some("cannot enter its mount namespace: EPERM".into());
    f.probe = Some(vec![r]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert!(b.works());
    assert_eq!(b.decided_by, Decider::Flags);
    assert!(
        b.reason
            .ends_with("(live probe inconclusive: cannot enter its mount namespace: EPERM)")
    );

    // Only one direction known, and it failed: that is enough to say Bidirectional is broken.
    f.probe = Some(vec![probe("docker.service", "/", Some(false), None)]);
    assert!(!mode(&plan(&f, &cfg()), KubeMode::Bidirectional).works());
}

#[test]
fn modes_a_probe_that_agrees_on_broken_keeps_the_blame_of_the_flags() {
    let mut f = with_units(
        kube_facts(),
        vec![running(old_docker(), own_ns_at_points(66, slave(1)))],
    );
    f.probe = Some(vec![probe("docker.service", "/", Some(true), Some(false))]);
    let p = plan(&f, &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(!b.works() && b.disagreement.is_none());
    assert_eq!(b.decided_by, Decider::Probe);
    assert_eq!(
        b.reason,
        "docker.service: its namespace at / only receives from the host (MountFlags=slave at /lib/systemd/system/docker.service:5); \
         the live probe agrees (docker.service at /: a tmpfs mounted in its namespace did not appear on the host)"
    );
    assert_eq!(b.blame.as_ref().map(|b| b.subject.as_str()), Some("docker.service"));
}

#[test]
fn modes_the_probe_cannot_clear_what_it_did_not_reach() {
    // A stopped old docker (predicted slave) and a running containerd the probe found fine.
    let mut containerd = running(fixed_docker(), host_ns(70));
    containerd.name = "containerd.service".into();
    let mut f = with_units(kube_facts(), vec![old_docker(), containerd]);
    f.probe = Some(vec![
        probe("containerd.service", "/", Some(true), Some(true)),
        probe("containerd.service", "/var/lib/kubelet", Some(true), Some(true)),
    ]);
    let b = mode(&plan(&f, &cfg()), KubeMode::Bidirectional).clone();
    assert!(!b.works());
    assert_eq!(b.decided_by, Decider::Flags);
    assert!(b.reason.starts_with("docker.service: when it starts"), "{}", b.reason);
    assert!(
        b.reason
            .ends_with("the live probe could not reach that, and found nothing else")
    );
}

// ---- a look at the paths alone ----

#[test]
fn a_paths_only_look_plans_the_paths_and_nothing_else() {
    let mut f = with_units(facts(252), vec![old_docker()]);
    f.scope = crate::engine::observe::Scope::Paths;
    f.systemd.version = None;
    f.host.paths[0].mount.propagation = private();
    let p = plan(&f, &cfg());
    assert_eq!(p.verdicts.iter().map(|v| v.subject.as_str()).collect::<Vec<_>>(), ["/"]);
    assert_eq!(kinds(&p), ["make-shared"]);
    assert!(
        p.notes.is_empty(),
        "no note about an unknown systemd version: {:?}",
        p.notes
    );
    assert!(p.modes.is_empty());
}

// ---- settings that give a runtime a namespace of its own ----

/// A fixed docker whose packaged unit also says `PrivateTmp=yes` on line 3.
fn sandboxed_docker() -> UnitFacts {
    let mut u = fixed_docker();
    u.files[0] = file(
        FRAGMENT,
        "[Service]\nExecStart=/usr/bin/dockerd\nPrivateTmp=yes\n",
        true,
    );
    u.props.mount_flags = Some(MS_SHARED);
    u
}

fn shared_and_slave() -> Propagation {
    Propagation {
        shared: Some(20),
        master: Some(1),
        ..Default::default()
    }
}

#[test]
fn a_sandboxing_setting_is_drift_named_by_file_and_line_and_never_restart_pending() {
    let mut c = cfg();
    c.restart = RestartPolicy::Always;
    let u = running(sandboxed_docker(), own_ns_at_points(66, shared_and_slave()));
    let p = plan(&with_units(kube_facts(), vec![u]), &c);
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert_eq!(
        v.blame,
        Some(Blame {
            file: FRAGMENT.into(),
            line: 3,
            setting: "PrivateTmp=yes".into()
        })
    );
    assert!(v.detail.starts_with(
        "PrivateTmp=yes (/lib/systemd/system/docker.service:3) gives it a mount namespace of its own, which receives the host's mounts but sends none back: Bidirectional volumes cannot work, and a restart does not help; remove it from /lib/systemd/system/docker.service, or set reset_namespacing = true"
    ), "{}", v.detail);
    assert_eq!(v.short, "PrivateTmp=yes: own mount namespace");
    // A restart would not help, so none is planned, even with restart = "always".
    assert!(kinds(&p).is_empty(), "{:?}", p.actions);
    assert_eq!(works(&p), [true, true, false]);
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).reason,
        "docker.service: its namespace at / only receives from the host (PrivateTmp=yes at /lib/systemd/system/docker.service:3)"
    );
    assert_eq!(p.status(), Status::Drift);
    // Stopped, it is judged by where it will start: a namespace of its own that only receives.
    let p = plan(&with_units(kube_facts(), vec![sandboxed_docker()]), &c);
    assert_eq!(works(&p), [true, true, false]);
    assert!(
        mode(&p, KubeMode::Bidirectional)
            .blame
            .as_ref()
            .is_some_and(|b| b.predicted)
    );
}

#[test]
fn reset_namespacing_writes_the_resets_and_then_a_restart_can_help() {
    let mut c = cfg();
    c.reset_namespacing = true;
    c.restart = RestartPolicy::Always;
    let u = running(sandboxed_docker(), own_ns_at_points(66, shared_and_slave()));
    let p = plan(&with_units(kube_facts(), vec![u.clone()]), &c);
    let content = p
        .actions
        .iter()
        .find_map(|a| match a {
            Action::WriteDropIn { content, .. } => Some(content.clone()),
            _ => None,
        })
        .expect("the drop-in is rewritten with the reset");
    assert!(content.ends_with("MountFlags=shared\n# reset_namespacing = true: these settings gave the unit a mount namespace of its own,\n# which receives the host's mounts but sends none back\nPrivateTmp=no\n"), "{content}");
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail
            .contains("apply writes mountprop's drop-in, which resets it (reset_namespacing = true), and reloads"),
        "{}",
        v.detail
    );
    assert_eq!(kinds(&p), ["write", "reload", "restart"]);
    // Once systemd has loaded it, the old process is what is left: a restart does help now.
    let mut loaded = u;
    loaded.own.state = OwnState::Ours(content.clone());
    loaded.files[1] = file(OWN, &content, true);
    let p = plan(&with_units(kube_facts(), vec![loaded.clone()]), &c);
    assert_eq!(verdict(&p, "docker.service").status, Status::RestartPending);
    assert_eq!(kinds(&p), ["restart"]);
    // And after the restart, in the host's namespace: compliant, nothing to do.
    loaded.runtime = Some(host_ns(67));
    loaded.props.main_pid = 67;
    let p = plan(&with_units(kube_facts(), vec![loaded]), &c);
    assert_eq!(p.status(), Status::Ok, "{:#?}", p.verdicts);
    assert!(p.actions.is_empty());
}

#[test]
fn a_setting_made_again_after_our_reset_is_named_and_not_fought() {
    let mut c = cfg();
    c.reset_namespacing = true;
    let mut u = sandboxed_docker();
    let site = "/etc/systemd/system/docker.service.d/zz-site.conf";
    u.files.push(file(site, "[Service]\nPrivateTmp=true\n", true));
    let p = plan(&with_units(kube_facts(), vec![u]), &c);
    let v = verdict(&p, "docker.service");
    assert_eq!(v.status, Status::Drift);
    assert_eq!(
        v.blame.as_ref().map(|b| (b.file.to_str(), b.line)),
        Some((Some(site), 2))
    );
    assert!(v.detail.contains("it is set again after mountprop's drop-in resets it; remove it from /etc/systemd/system/docker.service.d/zz-site.conf"), "{}", v.detail);
}

#[test]
fn settings_mountprop_may_not_reset_are_named_with_their_fix() {
    let mut c = cfg();
    c.reset_namespacing = true;
    let mut u = fixed_docker();
    u.files[0] = file(FRAGMENT, "[Service]\nDynamicUser=yes\nReadOnlyPaths=/etc\n", true);
    let p = plan(&with_units(kube_facts(), vec![u]), &c);
    let v = verdict(&p, "docker.service");
    // ReadOnlyPaths= is reset; DynamicUser= is not, and is what is left to blame.
    assert_eq!(v.blame.as_ref().map(|b| b.setting.as_str()), Some("DynamicUser=yes"));
    assert!(
        v.detail
            .contains("mountprop does not reset DynamicUser=; remove it from /lib/systemd/system/docker.service"),
        "{}",
        v.detail
    );
    let content = p.actions.iter().find_map(|a| match a {
        Action::WriteDropIn { content, .. } => Some(content.as_str()),
        _ => None,
    });
    assert!(content.is_some_and(|c| c.ends_with("ReadOnlyPaths=\n") && !c.contains("DynamicUser")));
}

#[test]
fn a_host_to_container_node_does_not_mind_a_namespace_that_receives() {
    let mut c = cfg();
    c.mount_flags = MountFlagsMode::Slave;
    c.required_mode = KubeMode::HostToContainer;
    let mut u = sandboxed_docker();
    let text = dropin::render(&dropin::choose(MountFlagsMode::Slave, Some(252)));
    u.own.state = OwnState::Ours(text.clone());
    u.files[1] = file(OWN, &text, true);
    u.props.mount_flags = Some(MS_SLAVE);
    let p = plan(
        &with_units(kube_facts(), vec![running(u, own_ns_at_points(66, slave(1)))]),
        &c,
    );
    assert_eq!(verdict(&p, "docker.service").status, Status::Ok, "{:#?}", p.verdicts);
    // It only receives: never called a peer.
    assert_eq!(verdict(&p, "docker.service").short, "MountFlags=slave, slave namespace");
    assert_eq!(p.status(), Status::Ok);
}

#[test]
fn modes_the_probe_judges_the_kubelet_by_what_it_sends() {
    // The kubelet's own mounts must reach the host for any pod volume to work: its probe
    // direction for HostToContainer is kubelet -> host.
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(own_ns_at_points(77, shared(1))),
        found: None,
    });
    f.probe = Some(vec![probe(
        "kubelet.service",
        "/var/lib/kubelet",
        Some(true),
        Some(false),
    )]);
    let p = plan(&f, &cfg());
    let h = mode(&p, KubeMode::HostToContainer);
    assert!(!h.works(), "{h:#?}");
    assert_eq!(
        h.reason,
        "kubelet.service at /var/lib/kubelet: a tmpfs mounted in its namespace did not appear on the host (live probe)"
    );
    f.probe = Some(vec![probe(
        "kubelet.service",
        "/var/lib/kubelet",
        Some(false),
        Some(true),
    )]);
    assert!(mode(&plan(&f, &cfg()), KubeMode::HostToContainer).works());
}

#[test]
fn modes_with_no_runtime_found_are_not_judged_never_works() {
    // A shared host and no runtime at all: the host's mounts say nothing about the namespace
    // pods are made from.
    let p = plan(&kube_facts(), &cfg());
    assert!(mode(&p, KubeMode::None).works());
    for m in [KubeMode::HostToContainer, KubeMode::Bidirectional] {
        let v = mode(&p, m);
        assert_eq!(v.judgement, Judgement::NotJudged(NotJudged::NoRuntime), "{v:?}");
        assert_eq!(v.reason, "no container runtime found");
        assert_eq!(v.to_string(), format!("{m} not judged: no container runtime found"));
    }
    // Not judged is not broken: the exit code follows the unit and path verdicts, as for an
    // image tree, and the one line says "not judged", never "works".
    assert_eq!(p.status(), Status::Ok);
    let line = crate::engine::summary::one_line(&p.verdicts, &p.modes, KubeMode::Bidirectional, &Default::default());
    assert!(
        line.ends_with("; Bidirectional not judged (no container runtime found)") && !line.contains("works"),
        "{line}"
    );
    // A unit that is not installed is no runtime either.
    let mut absent = old_docker();
    absent.props.load_state = "not-found".into();
    let p = plan(&with_units(kube_facts(), vec![absent]), &cfg());
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).judgement,
        Judgement::NotJudged(NotJudged::NoRuntime)
    );
    // A running kubelet alone is no runtime: still not judged when it is a peer.
    let mut f = kube_facts();
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(host_ns(70)),
        found: None,
    });
    assert_eq!(
        mode(&plan(&f, &cfg()), KubeMode::Bidirectional).judgement,
        Judgement::NotJudged(NotJudged::NoRuntime)
    );
    // A broken host mount is still broken with no runtime: that is judged from the host alone.
    let mut f = kube_facts();
    f.host.points[0].mount.propagation = private();
    assert!(mode(&plan(&f, &cfg()), KubeMode::Bidirectional).broken());
}

#[test]
fn modes_with_no_runtime_namespace_readable_are_not_judged() {
    let mut v = own_ns(66, shared(1));
    v.error = Some("permission denied".into());
    let p = plan(&with_units(kube_facts(), vec![running(fixed_docker(), v)]), &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert_eq!(b.judgement, Judgement::NotJudged(NotJudged::NoRuntimeSeen), "{b:?}");
    assert_eq!(b.reason, "no container runtime's namespace could be read");
}

use crate::engine::discover::{self, Discovery};

/// k3s as discovery finds it: containerd (a child of k3s) serving the k3s socket from
/// k3s.service, and the kubelet inside k3s itself, in the same unit.
fn k3s_found(root: &str) -> Facts {
    let mut u = running(old_docker(), own_ns_at_points(812, slave(1)));
    u.name = "k3s.service".into();
    u.props.active_state = "active".into();
    u.found_by = Some(crate::engine::observe::Found::Serves(
        "/run/k3s/containerd/containerd.sock".into(),
    ));
    let mut f = with_units(kube_facts(), vec![u]);
    let k = discover::Kubelet {
        pid: 800,
        comm: "k3s-server".into(),
        unit: Some("k3s.service".into()),
        root: root.into(),
        root_from: "k3s's default".into(),
        endpoint: Some("/run/k3s/containerd/containerd.sock".into()),
        resolved: None,
    };
    f.kubelet = Some(KubeletFacts {
        name: "k3s.service".into(),
        runtime: Some(own_ns_at_points(800, slave(1))),
        found: Some(k.clone()),
    });
    f.discovery = Some(Discovery {
        sockets: vec![discover::Socket {
            path: "/run/k3s/containerd/containerd.sock".into(),
            source: "well-known path of k3s, RKE2".into(),
            listening: true,
            server: Some(discover::Server {
                pid: 812,
                comm: "containerd".into(),
                unit: Some("k3s.service".into()),
                by_descriptor: true,
                state: Some("/run/k3s/containerd".into()),
            }),
        }],
        kubelet: Some(k),
        ..Default::default()
    });
    f
}

#[test]
fn a_discovered_unit_is_judged_like_a_configured_one_and_says_how_it_was_found() {
    let f = k3s_found("/var/lib/kubelet");
    let p = plan(&f, &cfg());
    let v = verdict(&p, "k3s.service");
    assert_eq!(v.status, Status::Drift, "{v:?}");
    assert!(v.detail.starts_with("MountFlags=slave"), "{}", v.detail);
    assert!(
        v.detail
            .contains("; found serving /run/k3s/containerd/containerd.sock (not in `units`)"),
        "{}",
        v.detail
    );
    assert!(
        v.detail
            .ends_with("; a restart of k3s.service also restarts the kubelet (it runs in that unit)"),
        "{}",
        v.detail
    );
    // The same drop-in as for a configured unit.
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::WriteDropIn { unit, .. } if unit == "k3s.service"))
    );
    assert!(
        p.notes
            .contains(&"runtimes: k3s.service serves /run/k3s/containerd/containerd.sock".to_string()),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes.contains(
            &"kubelet: k3s-server (pid 800) in k3s.service, root /var/lib/kubelet (k3s's default)".to_string()
        ),
        "{:?}",
        p.notes
    );
    // Named in the modes by the unit, with its file:line.
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(
        b.broken()
            && b.reason
                .starts_with("k3s.service: its namespace at / only receives from the host (MountFlags=slave at "),
        "{}",
        b.reason
    );
    assert_eq!(p.status(), Status::Drift);
}

#[test]
fn a_kubelet_root_other_than_configured_or_behind_a_symlink_is_said() {
    let mut f = k3s_found("/var/lib/k0s/kubelet");
    if let Some(k) = f.kubelet.as_mut().and_then(|k| k.found.as_mut()) {
        k.resolved = Some("/data/kubelet".into());
    }
    f.discovery.as_mut().unwrap().kubelet = f.kubelet.as_ref().unwrap().found.clone();
    let p = plan(&f, &cfg());
    assert!(
        p.notes.contains(&"the running kubelet's root /var/lib/k0s/kubelet is not kubelet_root /var/lib/kubelet: the modes are judged at both".to_string()),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes.contains(
            &"the kubelet's root /var/lib/k0s/kubelet is reached through a symlink: it is /data/kubelet".to_string()
        ),
        "{:?}",
        p.notes
    );
    // The same root as configured: nothing said about it.
    let p = plan(&k3s_found("/var/lib/kubelet"), &cfg());
    assert!(
        !p.notes
            .iter()
            .any(|n| n.contains("is not kubelet_root") || n.contains("symlink")),
        "{:?}",
        p.notes
    );
}

#[test]
fn a_configured_unit_says_what_it_serves_and_a_socket_nobody_can_place_is_named() {
    let mut f = with_units(kube_facts(), vec![running(fixed_docker(), host_ns(66))]);
    f.discovery = Some(Discovery {
        sockets: vec![
            discover::Socket {
                path: "/run/docker.sock".into(),
                source: "well-known path of Docker".into(),
                listening: true,
                server: Some(discover::Server {
                    pid: 66,
                    comm: "dockerd".into(),
                    unit: Some("docker.service".into()),
                    by_descriptor: true,
                    state: None,
                }),
            },
            discover::Socket {
                path: "/run/crio/crio.sock".into(),
                source: "well-known path of CRI-O (OpenShift)".into(),
                listening: true,
                server: None,
            },
            discover::Socket {
                path: "/run/k0s/containerd.sock".into(),
                source: "well-known path of k0s".into(),
                listening: false,
                server: None,
            },
        ],
        unreadable: 3,
        ..Default::default()
    });
    let p = plan(&f, &cfg());
    // A configured unit's own line is as before; the note says how it was found.
    assert!(!verdict(&p, "docker.service").detail.contains("found"));
    assert!(
        p.notes
            .contains(&"runtimes: docker.service configured, serves /run/docker.sock".to_string()),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes.iter().any(|n| n
            .starts_with("/run/crio/crio.sock is listening, but which process serves it is not known: 3 processes'")),
        "{:?}",
        p.notes
    );
    assert!(
        p.notes.contains(
            &"/run/k0s/containerd.sock exists (well-known path of k0s), but nothing listens on it".to_string()
        ),
        "{:?}",
        p.notes
    );
    assert_eq!(p.status(), Status::Ok);
}

#[test]
fn the_kubelets_own_unit_found_running_is_judged_as_a_unit_and_never_as_a_runtime() {
    // kubelet.service found running the kubelet (not in `units`), MountFlags=slave.
    let mut k = running(old_docker(), own_ns_at_points(70, slave(1)));
    k.name = "kubelet.service".into();
    k.props.active_state = "active".into();
    k.found_by = Some(crate::engine::observe::Found::Kubelet);
    let mut f = with_units(kube_facts(), vec![k.clone()]);
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(own_ns_at_points(70, slave(1))),
        found: None,
    });
    let p = plan(&f, &cfg());
    let v = verdict(&p, "kubelet.service");
    assert_eq!(v.status, Status::Drift);
    assert!(
        v.detail.ends_with("; found running the kubelet (not in `units`)"),
        "{}",
        v.detail
    );
    assert!(!v.detail.contains("also restarts the kubelet"), "{}", v.detail);
    // In the modes it is the kubelet, named with its file:line.
    let h = mode(&p, KubeMode::HostToContainer);
    assert_eq!(
        h.reason,
        "kubelet.service: its namespace at / only receives from the host, so the volumes the kubelet mounts there reach no container (MountFlags=slave at /lib/systemd/system/docker.service:5)"
    );
    // Healthy, with no runtime: still not judged, the kubelet is no runtime.
    let mut healthy = running(fixed_docker(), host_ns(70));
    healthy.name = "kubelet.service".into();
    healthy.found_by = Some(crate::engine::observe::Found::Kubelet);
    f.units = vec![healthy];
    f.kubelet.as_mut().unwrap().runtime = Some(host_ns(70));
    let p = plan(&f, &cfg());
    assert_eq!(
        mode(&p, KubeMode::Bidirectional).judgement,
        Judgement::NotJudged(NotJudged::NoRuntime)
    );
}

#[test]
fn a_runtime_and_the_kubelet_in_one_namespace_of_their_own_are_named_for_that() {
    // OpenShift's layout: container-mount-namespace.service makes a namespace (a slave of the
    // host's, shared inside: shared:50 master:1) that crio.service and kubelet.service enter.
    let inside = Propagation {
        shared: Some(50),
        master: Some(1),
        ..Default::default()
    };
    let mut view = own_ns_at_points(66, inside);
    view.first_mount = Some(900);
    let mut crio = running(fixed_docker(), view.clone());
    crio.name = "crio.service".into();
    let mut f = with_units(kube_facts(), vec![crio]);
    let mut kview = view.clone();
    kview.pid = 70;
    f.kubelet = Some(KubeletFacts {
        name: "kubelet.service".into(),
        runtime: Some(kview),
        found: None,
    });
    let p = plan(&f, &cfg());
    // The kubelet's volumes reach the pods inside, and the host's mounts arrive: it works.
    assert!(
        mode(&p, KubeMode::HostToContainer).works(),
        "{:?}",
        mode(&p, KubeMode::HostToContainer)
    );
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(b.broken());
    assert_eq!(
        b.reason,
        "crio.service and kubelet.service share a mount namespace of their own, not the host's (a layout such as OpenShift's container-mount-namespace.service): at / Bidirectional mounts reach the pods and the kubelet, not the host OS"
    );
    assert!(
        verdict(&p, "crio.service")
            .detail
            .ends_with("; it shares this mount namespace with the kubelet (a layout such as OpenShift's container-mount-namespace.service, whose units enter it): a restart enters it again"),
        "{}",
        verdict(&p, "crio.service").detail
    );
    // Two namespaces of their own that are not the same one: the plain reasons.
    f.kubelet.as_mut().unwrap().runtime.as_mut().unwrap().first_mount = Some(901);
    let p = plan(&f, &cfg());
    assert!(
        mode(&p, KubeMode::Bidirectional)
            .reason
            .starts_with("crio.service: its namespace at / only receives from the host"),
        "{}",
        mode(&p, KubeMode::Bidirectional).reason
    );
    assert!(!mode(&p, KubeMode::HostToContainer).works());
}

#[test]
fn a_runtime_sharing_the_kubelets_unit_has_that_units_namespace_not_openshifts_layout() {
    // k3s with MountFlags=slave: containerd and the kubelet in k3s.service's own namespace.
    let mut f = k3s_found("/var/lib/kubelet");
    f.units[0].runtime.as_mut().unwrap().first_mount = Some(900);
    f.kubelet.as_mut().unwrap().runtime.as_mut().unwrap().first_mount = Some(900);
    let p = plan(&f, &cfg());
    let b = mode(&p, KubeMode::Bidirectional);
    assert!(
        b.reason
            .starts_with("k3s.service: its namespace at / only receives from the host"),
        "{}",
        b.reason
    );
    let v = verdict(&p, "k3s.service");
    assert!(!v.detail.contains("shares this mount namespace"), "{}", v.detail);
    assert!(v.detail.contains("also restarts the kubelet"), "{}", v.detail);
}
