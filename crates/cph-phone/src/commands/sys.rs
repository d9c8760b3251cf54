//! System commands: ps, id, uname, date, sleep, env, which, reboot, …

use super::{fail, getopt};
use crate::shell::Ctx;

/// Longest `sleep` accepted (seconds).
pub const MAX_SLEEP_SECS: f64 = 3600.0;

fn prop(ctx: &Ctx<'_>, key: &str) -> Option<String> {
    ctx.core.props.get(key).filter(|v| !v.is_empty())
}

pub fn pwd(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    i32::from(writeln!(ctx.stdout, "{}", ctx.cwd).is_err())
}

pub fn whoami(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    i32::from(writeln!(ctx.stdout, "root").is_err())
}

pub fn id(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "ugGnrZ", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    if let Some(user) = o.args.first()
        && user != "root"
        && user != "0"
    {
        let _ = writeln!(ctx.stderr, "id: no such user '{user}'");
        return 1;
    }
    let text = if o.has('u') || o.has('g') {
        if o.has('n') {
            "root".to_owned()
        } else {
            "0".to_owned()
        }
    } else if o.has('G') {
        if o.has('n') {
            "root input log adb sdcard_rw sdcard_r net_bt_admin net_bt inet net_bw_stats".to_owned()
        } else {
            "0 1004 1007 1011 1015 1028 3001 3002 3003 3006".to_owned()
        }
    } else if o.has('Z') {
        "u:r:su:s0".to_owned()
    } else {
        "uid=0(root) gid=0(root) groups=0(root),1004(input),1007(log),1011(adb),1015(sdcard_rw),1028(sdcard_r),3001(net_bt_admin),3002(net_bt),3003(inet),3006(net_bw_stats) context=u:r:su:s0".to_owned()
    };
    i32::from(writeln!(ctx.stdout, "{text}").is_err())
}

fn machine(ctx: &Ctx<'_>) -> String {
    match prop(ctx, "ro.product.cpu.abi").as_deref() {
        Some("x86_64") => "x86_64".into(),
        Some("x86") => "i686".into(),
        Some(a) if a.starts_with("armeabi") => "armv8l".into(),
        _ => "aarch64".into(),
    }
}

fn kernel_release(ctx: &Ctx<'_>) -> String {
    prop(ctx, "ro.kernel.version").unwrap_or_else(|| "5.10.198-android12-9-g0f1c2d3e4f5a".into())
}

pub fn uname(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "asnrvmpio", &[("all", 'a')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let host = prop(ctx, "net.hostname").unwrap_or_else(|| "localhost".into());
    let version = "#1 SMP PREEMPT Thu Jan 1 00:00:00 UTC 2024".to_owned();
    let m = machine(ctx);
    let all = o.has('a');
    let mut parts = Vec::new();
    if all
        || o.has('s')
        || !(o.has('n')
            || o.has('r')
            || o.has('v')
            || o.has('m')
            || o.has('o')
            || o.has('p')
            || o.has('i'))
    {
        parts.push("Linux".to_owned());
    }
    if all || o.has('n') {
        parts.push(host);
    }
    if all || o.has('r') {
        parts.push(kernel_release(ctx));
    }
    if all || o.has('v') {
        parts.push(version);
    }
    if all || o.has('m') {
        parts.push(m.clone());
    }
    if !all && o.has('p') {
        parts.push(m.clone());
    }
    if !all && o.has('i') {
        parts.push(m);
    }
    if all || o.has('o') {
        parts.push("Toybox".into());
    }
    i32::from(writeln!(ctx.stdout, "{}", parts.join(" ")).is_err())
}

pub fn hostname(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    let host = prop(ctx, "net.hostname").unwrap_or_else(|| "localhost".into());
    i32::from(writeln!(ctx.stdout, "{host}").is_err())
}

pub fn getenforce(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    i32::from(writeln!(ctx.stdout, "Enforcing").is_err())
}

pub fn nproc(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    i32::from(writeln!(ctx.stdout, "8").is_err())
}

pub fn clear(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    i32::from(ctx.stdout.write_all(b"\x1b[2J\x1b[H").is_err())
}

pub fn uptime(ctx: &mut Ctx<'_>, _args: &[String]) -> i32 {
    let now = chrono::Utc::now();
    i32::from(
        writeln!(
            ctx.stdout,
            " {} up 0 days,  0:01,  0 users,  load average: 0.00, 0.00, 0.00",
            now.format("%H:%M:%S")
        )
        .is_err(),
    )
}

pub fn date(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "ud:r:D:sIR", &[("utc", 'u'), ("date", 'd')]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut t = chrono::Utc::now().timestamp();
    if let Some(d) = o.val('d') {
        match super::files::parse_date(d) {
            Some(v) => t = v,
            None => {
                let _ = writeln!(ctx.stderr, "date: bad date '{d}'");
                return 1;
            }
        }
    }
    if let Some(r) = o.val('r') {
        match ctx.core.fs.stat(&super::dev(ctx, r)) {
            Ok(st) => t = st.mtime,
            Err(e) => {
                super::path_err(ctx, "date", r, &e);
                return 1;
            }
        }
    }
    let mut fmt = "%a %b %e %H:%M:%S %Z %Y".to_owned();
    for a in &o.args {
        if let Some(f) = a.strip_prefix('+') {
            fmt = f.to_owned();
        } else {
            let _ = writeln!(ctx.stderr, "date: cannot set date: Operation not permitted");
            return 1;
        }
    }
    if o.has('I') {
        fmt = "%Y-%m-%d".into();
    }
    if o.has('R') {
        fmt = "%a, %d %b %Y %H:%M:%S %z".into();
    }
    use chrono::TimeZone;
    let Some(dt) = chrono::Utc.timestamp_opt(t, 0).single() else {
        fail(ctx, "date", "bad time");
        return 1;
    };
    // `%Z` of a UTC time prints "UTC", as the phone's timezone is UTC.
    let text = dt
        .format_with_items(chrono::format::StrftimeItems::new_lenient(&fmt))
        .to_string();
    i32::from(writeln!(ctx.stdout, "{text}").is_err())
}

pub fn sleep(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if args.len() < 2 {
        fail(ctx, "sleep", "Needs 1 argument");
        return 1;
    }
    let mut total = 0.0f64;
    for a in &args[1..] {
        let (num, mult) = match a.chars().last() {
            Some('s') => (&a[..a.len() - 1], 1.0),
            Some('m') => (&a[..a.len() - 1], 60.0),
            Some('h') => (&a[..a.len() - 1], 3600.0),
            Some('d') => (&a[..a.len() - 1], 86400.0),
            _ => (a.as_str(), 1.0),
        };
        match num.parse::<f64>() {
            Ok(v) if v.is_finite() && v >= 0.0 => total += v * mult,
            _ => {
                let _ = writeln!(ctx.stderr, "sleep: bad number '{a}'");
                return 1;
            }
        }
    }
    if total > MAX_SLEEP_SECS {
        let _ = writeln!(
            ctx.stderr,
            "sleep: {total}: longer than {MAX_SLEEP_SECS} seconds"
        );
        return 1;
    }
    if ctx.cancel.sleep(std::time::Duration::from_secs_f64(total)) {
        0
    } else {
        crate::shell::HUNG_UP
    }
}

pub fn env(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let mut i = 1;
    let mut clear = false;
    let mut unset = Vec::new();
    while i < args.len() {
        match args[i].as_str() {
            "-i" | "-" => clear = true,
            "-u" => {
                i += 1;
                if let Some(v) = args.get(i) {
                    unset.push(v.clone());
                }
            }
            "-0" => {}
            _ => break,
        }
        i += 1;
    }
    let mut vars = if clear {
        Default::default()
    } else {
        ctx.env.clone()
    };
    for u in &unset {
        vars.remove(u);
    }
    while i < args.len() {
        match args[i].split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                vars.insert(k.to_owned(), v.to_owned());
                i += 1;
            }
            _ => break,
        }
    }
    if i >= args.len() {
        let mut out = String::new();
        for (k, v) in &vars {
            out.push_str(&format!("{k}={v}\n"));
        }
        return i32::from(ctx.stdout.write_all(out.as_bytes()).is_err());
    }
    let argv = &args[i..];
    let Some(f) = super::lookup(&argv[0]) else {
        let _ = writeln!(ctx.stderr, "env: {}: No such file or directory", argv[0]);
        return 127;
    };
    let mut sub = Ctx {
        core: ctx.core,
        cwd: ctx.cwd.clone(),
        env: &mut vars,
        stdin: &mut *ctx.stdin,
        stdout: &mut *ctx.stdout,
        stderr: &mut *ctx.stderr,
        cancel: ctx.cancel.clone(),
    };
    f(&mut sub, argv)
}

pub fn printenv(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    if args.len() < 2 {
        let mut out = String::new();
        for (k, v) in ctx.env.iter() {
            out.push_str(&format!("{k}={v}\n"));
        }
        return i32::from(ctx.stdout.write_all(out.as_bytes()).is_err());
    }
    let mut status = 0;
    for k in &args[1..] {
        match ctx.env.get(k) {
            Some(v) => {
                let _ = writeln!(ctx.stdout, "{v}");
            }
            None => status = 1,
        }
    }
    status
}

pub fn which(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "a", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let mut status = 0;
    for name in &o.args {
        if name.contains('/') {
            if ctx
                .core
                .fs
                .stat(&super::dev(ctx, name))
                .is_ok_and(|s| s.mode & 0o111 != 0)
            {
                let _ = writeln!(ctx.stdout, "{name}");
            } else {
                status = 1;
            }
            continue;
        }
        if super::lookup(name).is_some() || name == "sh" {
            let _ = writeln!(ctx.stdout, "/system/bin/{name}");
        } else {
            status = 1;
        }
    }
    status
}

pub fn reboot(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "fnp", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let target = if o.has('p') {
        "shutdown".to_owned()
    } else {
        o.args.first().cloned().unwrap_or_default()
    };
    ctx.core.control.request_reboot(&target);
    0
}

/// `toybox [COMMAND [ARG…]]`: runs a command, or lists them.
pub fn toybox(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    match args.get(1) {
        None => {
            let names: Vec<&str> = super::COMMANDS.iter().map(|(n, _)| *n).collect();
            i32::from(writeln!(ctx.stdout, "{}", names.join(" ")).is_err())
        }
        Some(name) => match super::COMMANDS.iter().find(|(n, _)| n == name) {
            Some((_, f)) => f(ctx, &args[1..]),
            None => {
                let _ = writeln!(ctx.stderr, "toybox: Unknown command {name}");
                1
            }
        },
    }
}

/// One row of the process table: (user, pid, ppid, vsz, rss, wchan, state, name).
type Proc = (&'static str, u32, u32, u64, u64, &'static str, char, String);

/// A plausible process table for a booted phone: (user, pid, ppid, vsz, rss, wchan, state, name).
fn processes(ctx: &Ctx<'_>) -> Vec<Proc> {
    let abi64 = !matches!(machine(ctx).as_str(), "i686" | "armv8l");
    let zygote = if abi64 { "zygote64" } else { "zygote" };
    let mut v = vec![
        (
            "root",
            1,
            0,
            10_900_000,
            9_600,
            "do_epoll_wait",
            'S',
            "init".to_owned(),
        ),
        ("root", 2, 0, 0, 0, "kthreadd", 'S', "[kthreadd]".to_owned()),
        (
            "root",
            180,
            1,
            10_800_000,
            3_000,
            "do_sys_poll",
            'S',
            "ueventd".to_owned(),
        ),
        (
            "logd",
            290,
            1,
            10_900_000,
            6_400,
            "do_sys_poll",
            'S',
            "logd".to_owned(),
        ),
        (
            "system",
            300,
            1,
            10_800_000,
            4_100,
            "binder_ioctl",
            'S',
            "servicemanager".to_owned(),
        ),
        (
            "system",
            301,
            1,
            10_800_000,
            4_200,
            "binder_ioctl",
            'S',
            "hwservicemanager".to_owned(),
        ),
        (
            "root",
            330,
            1,
            10_900_000,
            5_100,
            "do_epoll_wait",
            'S',
            "vold".to_owned(),
        ),
        (
            "root",
            520,
            1,
            14_200_000,
            104_000,
            "do_sys_poll",
            'S',
            zygote.to_owned(),
        ),
        (
            "system",
            560,
            1,
            11_100_000,
            21_000,
            "do_epoll_wait",
            'S',
            "surfaceflinger".to_owned(),
        ),
        (
            "shell",
            600,
            1,
            10_900_000,
            5_300,
            "do_epoll_wait",
            'S',
            "adbd".to_owned(),
        ),
        (
            "system",
            820,
            520,
            17_900_000,
            260_000,
            "do_epoll_wait",
            'S',
            "system_server".to_owned(),
        ),
        (
            "u0_a50",
            1010,
            520,
            15_100_000,
            160_000,
            "do_epoll_wait",
            'S',
            "com.android.systemui".to_owned(),
        ),
        (
            "radio",
            1100,
            520,
            14_800_000,
            90_000,
            "do_epoll_wait",
            'S',
            "com.android.phone".to_owned(),
        ),
        (
            "u0_a60",
            1200,
            520,
            14_700_000,
            110_000,
            "do_epoll_wait",
            'S',
            "com.android.launcher3".to_owned(),
        ),
    ];
    v.push((
        "root",
        4100,
        600,
        10_800_000,
        3_800,
        "do_wait",
        'S',
        "sh".to_owned(),
    ));
    v.push((
        "root",
        4101,
        4100,
        10_800_000,
        3_900,
        "0",
        'R',
        "ps".to_owned(),
    ));
    v
}

pub fn ps(ctx: &mut Ctx<'_>, args: &[String]) -> i32 {
    let o = match getopt(ctx, args, "AeflTtwo:p:u:ZMk:", &[]) {
        Ok(o) => o,
        Err(s) => return s,
    };
    let all = o.has('A') || o.has('e');
    let mut procs = processes(ctx);
    if !all {
        procs.retain(|p| p.2 == 600 || p.2 == 4100);
    }
    if let Some(pids) = o.val('p') {
        let want: Vec<u32> = pids
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        procs = processes(ctx)
            .into_iter()
            .filter(|p| want.contains(&p.1))
            .collect();
    }
    let names: Vec<String> = o.args.clone();
    if !names.is_empty() {
        procs = processes(ctx)
            .into_iter()
            .filter(|p| {
                names
                    .iter()
                    .any(|n| p.7 == *n || p.7.ends_with(&format!("/{n}")))
            })
            .collect();
    }
    if let Some(fields) = o.val('o') {
        let cols: Vec<String> = fields.split(',').map(|f| f.trim().to_uppercase()).collect();
        let mut out = format!(
            "{}\n",
            cols.iter()
                .map(
                    |c| if c == "ARGS" || c == "CMD" || c == "COMM" || c == "NAME" {
                        c.clone()
                    } else {
                        format!("{c:>5}")
                    }
                )
                .collect::<Vec<_>>()
                .join(" ")
        );
        for p in &procs {
            let row: Vec<String> = cols
                .iter()
                .map(|c| match c.as_str() {
                    "PID" => format!("{:>5}", p.1),
                    "PPID" => format!("{:>5}", p.2),
                    "USER" => p.0.to_owned(),
                    "VSZ" => p.3.to_string(),
                    "RSS" => p.4.to_string(),
                    "S" | "STAT" => p.6.to_string(),
                    _ => p.7.clone(),
                })
                .collect();
            out.push_str(&row.join(" "));
            out.push('\n');
        }
        return i32::from(ctx.stdout.write_all(out.as_bytes()).is_err());
    }
    let mut out = String::from(
        "USER           PID  PPID     VSZ    RSS WCHAN            ADDR S NAME                       \n",
    );
    for (user, pid, ppid, vsz, rss, wchan, state, name) in &procs {
        out.push_str(&format!(
            "{user:<12} {pid:>5} {ppid:>5} {vsz:>7} {rss:>6} {wchan:<16} {:>4} {state} {name}\n",
            0
        ));
    }
    i32::from(ctx.stdout.write_all(out.as_bytes()).is_err())
}
