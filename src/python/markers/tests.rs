use super::*;

fn linux_311(machine: &str) -> Environment {
    let mut env = Environment::default();
    for (k, v) in [
        ("os_name", "posix"),
        ("sys_platform", "linux"),
        ("platform_system", "Linux"),
        ("platform_machine", machine),
        ("python_version", "3.11"),
        ("python_full_version", "3.11.2"),
        ("implementation_name", "cpython"),
        ("platform_python_implementation", "CPython"),
    ] {
        env.values.insert(k.into(), v.into());
    }
    env
}

fn holds(marker: &str, env: &Environment) -> bool {
    Marker::parse(marker)
        .unwrap_or_else(|e| panic!("{e}"))
        .holds(env)
}

#[test]
fn markers_judge_each_platform() {
    let amd = linux_311("x86_64");
    let arm = linux_311("aarch64");
    assert!(!holds("sys_platform == 'win32'", &amd));
    assert!(holds("platform_system != \"Windows\"", &amd));
    assert!(holds("platform_machine == 'x86_64'", &amd));
    assert!(!holds("platform_machine == 'x86_64'", &arm));
    assert!(holds(
        "python_version >= '3.8' and (platform_machine == 'aarch64' or sys_platform == 'darwin')",
        &arm
    ));
    assert!(!holds("python_version < '3.10'", &amd));
    // Versions compare as versions, not strings ('3.9' > '3.11' as text).
    assert!(holds("python_full_version > '3.9'", &amd));
    assert!(holds("'3.10' <= python_version", &amd));
    assert!(holds("'linux' in sys_platform", &amd));
    assert!(holds("'arm' not in platform_machine", &amd));
    assert!(holds(
        "implementation_name == 'cpython' and os_name == 'posix'",
        &amd
    ));
}

#[test]
fn extras_and_groups_are_sets() {
    let mut env = linux_311("x86_64");
    assert!(!holds("extra == 'security'", &env));
    assert!(!holds("'dev' in dependency_groups", &env));
    env.extras.insert("Security".into());
    env.dependency_groups.insert("dev".into());
    assert!(holds("extra == 'security'", &env));
    assert!(holds("'security' in extras", &env));
    assert!(holds("'dev' in dependency_groups", &env));
    assert!(!holds("'dev' not in dependency_groups", &env));
}

#[test]
fn bad_markers_are_refused_with_the_marker_named() {
    for (bad, why) in [
        ("python_version >= '3.8", "not closed"),
        ("python_versoin >= '3.8'", "not a marker variable"),
        ("python_version => '3.8'", "not a comparison"),
        ("'a' == 'b'", "variable on one side"),
        ("(python_version > '3'", "not closed"),
        ("python_version > '3' extra", "after the end"),
        ("not python_version", "followed by `in`"),
    ] {
        let e = Marker::parse(bad).unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
        assert!(e.to_string().contains(bad), "{e}");
    }
    let deep = format!("{}python_version > '3'{}", "(".repeat(40), ")".repeat(40));
    assert!(Marker::parse(&deep).unwrap_err().message.contains("deeper"));
}
