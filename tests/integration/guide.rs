//! The README and the guide in docs/ cannot rot: every `console` block runs and prints what it
//! shows, every relative link and anchor resolves, the README stays short, and the pictures'
//! script still draws every picture. (Rust snippets are doctests, `src/lib.rs`; Python ones run
//! under pytest, `python/tests/test_guide.py`.)
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::fixtures::{available, output_dir, python, root};

/// The README's length the guide exists to keep it under.
const README_LINES: usize = 250;

/// The README and every page of the guide.
fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, pages: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, pages);
            } else if path.extension().is_some_and(|e| e == "md") {
                pages.push(path);
            }
        }
    }
    let mut pages = vec![root().join("README.md")];
    walk(&root().join("docs"), &mut pages);
    pages
}

/// One command of a `console` block: the line after `$ `, the output shown under it (`...`
/// stands for any lines) and the exit status (`[exit N]` as the last line; 0 otherwise).
struct Example {
    page: PathBuf,
    line: usize,
    command: String,
    expected: Vec<String>,
    status: i32,
}

fn examples(page: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut examples: Vec<Example> = Vec::new();
    let mut in_console = false;
    for (number, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_console = !in_console && line.trim() == "```console";
            continue;
        }
        if !in_console {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            examples.push(Example {
                page: page.to_path_buf(),
                line: number + 1,
                command: command.to_string(),
                expected: Vec::new(),
                status: 0,
            });
        } else if let Some(example) = examples.last_mut() {
            match line
                .strip_prefix("[exit ")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                Some(status) => example.status = status.parse().unwrap(),
                None => example.expected.push(line.trim_end().to_string()),
            }
        }
    }
    examples
}

/// Whether `actual` reads as `expected`, where a `...` line stands for any number of lines.
fn matches(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => actual
            .split_first()
            .is_some_and(|(line, tail)| line.trim_end() == first && matches(rest, tail)),
    }
}

/// Every `console` example of the README and the guide runs from the repository's root, with
/// the binary under test as `rmt-torch`, and prints exactly the lines it shows (numbers to the
/// printed precision) and exits as it says.
#[test]
fn every_console_example_runs_and_prints_what_the_guide_shows() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_rmt-torch"));
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut failures = Vec::new();
    let mut count = 0;
    for page in pages() {
        for example in examples(&page) {
            count += 1;
            let output = Command::new("sh")
                .arg("-c")
                .arg(&example.command)
                .current_dir(root())
                .env("PATH", &path)
                .env("CI", "1")
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let actual: Vec<&str> = stdout.lines().collect();
            let status = output.status.code().unwrap_or(-1);
            if status != example.status || !matches(&example.expected, &actual) {
                failures.push(format!(
                    "{}:{}: $ {}\nexit {status} (expected {}); printed:\n{stdout}{}",
                    example.page.strip_prefix(root()).unwrap().display(),
                    example.line,
                    example.command,
                    example.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
        }
    }
    assert!(count >= 15, "only {count} console examples found");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation but `-` and `_` dropped, spaces as
/// `-`.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a page's headings (outside code blocks).
fn anchors(page: &Path) -> HashSet<String> {
    let mut in_code = false;
    std::fs::read_to_string(page)
        .unwrap()
        .lines()
        .filter(|line| {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            !in_code && line.starts_with('#')
        })
        .map(|line| anchor(line.trim_start_matches('#')))
        .collect()
}

/// The targets of a page's Markdown links and images, outside code.
fn links(page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(page).unwrap();
    let mut links = Vec::new();
    let mut in_code = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let mut rest = line;
        while let Some(start) = rest.find("](") {
            let after = &rest[start + 2..];
            let end = after.find(')').unwrap_or(after.len());
            links.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    links
}

/// Every relative link of the README and the guide names a file that exists and, after `#`,
/// a heading of it; every page of the guide is reachable from the README within two clicks.
#[test]
fn every_link_of_the_guide_resolves_and_every_page_is_two_clicks_away() {
    let mut broken = Vec::new();
    for page in pages() {
        for link in links(&page) {
            if link.starts_with("http://") || link.starts_with("https://") {
                continue;
            }
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                page.clone()
            } else {
                page.parent().unwrap().join(file)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", page.display()));
            } else if !fragment.is_empty()
                && target.extension().is_some_and(|e| e == "md")
                && !anchors(&target).contains(fragment)
            {
                broken.push(format!("{}: {link}: no such heading", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
    let linked = |page: &Path| -> HashSet<PathBuf> {
        links(page)
            .iter()
            .filter(|link| !link.starts_with("http"))
            .map(|link| link.split('#').next().unwrap().to_string())
            .filter(|file| file.ends_with(".md"))
            .filter_map(|file| page.parent().unwrap().join(file).canonicalize().ok())
            .collect()
    };
    let readme = root().join("README.md");
    let first = linked(&readme);
    let mut reachable = first.clone();
    for page in &first {
        reachable.extend(linked(page));
    }
    let unreachable: Vec<_> = pages()
        .into_iter()
        .skip(1)
        .filter(|page| !reachable.contains(&page.canonicalize().unwrap()))
        .collect();
    assert!(
        unreachable.is_empty(),
        "more than two clicks from the README: {unreachable:?}"
    );
}

/// The README sells and starts; the rest is the guide's.
#[test]
fn the_readme_stays_short_and_shows_its_pictures() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let lines = readme.lines().count();
    assert!(lines <= README_LINES, "README.md has {lines} lines");
    let pictures: Vec<_> = links(&root().join("README.md"))
        .into_iter()
        .filter(|link| link.ends_with(".png"))
        .collect();
    assert!(pictures.len() >= 4, "README shows {pictures:?}");
    for picture in pictures {
        let size = std::fs::metadata(root().join(&picture)).unwrap().len();
        assert!(size < 200_000, "{picture}: {size} bytes");
    }
}

/// `scripts/make_pictures.py` still draws every picture the README shows, each under 200 KB
/// (the report's screenshot needs Chromium).
#[test]
fn the_pictures_script_still_draws_every_picture() {
    let out = output_dir("guide-pictures");
    let result = Command::new(python())
        .arg(root().join("scripts/make_pictures.py"))
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "make_pictures.py: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let mut expected = vec![
        "esd-mp-tracy-widom.png",
        "alpha-per-layer.png",
        "hessian-density.png",
    ];
    let browser = !String::from_utf8_lossy(&result.stderr).contains("no Chromium");
    let test = "the_pictures_script_still_draws_every_picture";
    if available("chromium", browser.then_some(()), test).is_some() {
        expected.push("report.png");
    }
    for name in expected {
        let size = std::fs::metadata(out.join(name))
            .unwrap_or_else(|_| panic!("{name} was not drawn"))
            .len();
        assert!(size > 10_000 && size < 200_000, "{name}: {size} bytes");
    }
}
