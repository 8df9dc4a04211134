//! Best-effort mapping from a field path (`steps[2].phases[0].tuningSet`) to a line:column in
//! block-style YAML text.
//!
//! `serde_yaml` values carry no positions, so after decoding we find the place again by walking
//! the text: a key is searched below the current block, `[n]` counts sequence items at the
//! block's item indentation. Flow-style YAML (`{a: 1}`) is not followed; the answer is then
//! `None` and the problem is reported with its field path only.

/// Returns the 1-based (line, column) of `path` in `text`, if it can be found.
pub fn locate(text: &str, path: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let segments = split_path(path)?;
    // (line index, column) of the current node; parent indent bounds the search.
    let mut cur_line = 0usize;
    let mut cur_col = 0usize;
    let mut parent_indent: isize = -1;
    let mut first = true;
    for seg in segments {
        match seg {
            Segment::Key(key) => {
                let start = cur_line;
                let mut found = None;
                for (i, line) in lines.iter().enumerate().skip(start) {
                    let (indent, content) = item_content(line);
                    if content.is_empty() || content.starts_with('#') {
                        continue;
                    }
                    let line_indent = leading_spaces(line) as isize;
                    if !first && i > start && line_indent <= parent_indent {
                        break;
                    }
                    if (indent as isize) <= parent_indent && !first {
                        continue;
                    }
                    if key_matches(content, &key) {
                        found = Some((i, indent));
                        break;
                    }
                }
                let (i, indent) = found?;
                cur_line = i;
                cur_col = indent;
                parent_indent = indent as isize;
            }
            Segment::Index(n) => {
                let mut item_indent = None;
                let mut count = 0usize;
                let mut found = None;
                for (i, line) in lines.iter().enumerate().skip(cur_line + 1) {
                    let trimmed = line.trim_start();
                    if trimmed.is_empty() || trimmed.starts_with('#') {
                        continue;
                    }
                    let ind = leading_spaces(line);
                    let is_item = trimmed.starts_with("- ") || trimmed == "-";
                    match item_indent {
                        None => {
                            if !is_item {
                                return None;
                            }
                            item_indent = Some(ind);
                        }
                        Some(ii) => {
                            if ind < ii || (ind == ii && !is_item) {
                                break;
                            }
                            if ind > ii {
                                continue;
                            }
                        }
                    }
                    if count == n {
                        found = Some((i, ind));
                        break;
                    }
                    count += 1;
                }
                let (i, ind) = found?;
                cur_line = i;
                cur_col = ind;
                parent_indent = ind as isize;
            }
        }
        first = false;
    }
    Some((cur_line + 1, cur_col + 1))
}

enum Segment {
    Key(String),
    Index(usize),
}

fn split_path(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        if part.is_empty() {
            continue;
        }
        let (key, rest) = match part.find('[') {
            Some(p) => (&part[..p], &part[p..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Segment::Key(key.to_string()));
        }
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            out.push(Segment::Index(stripped[..end].parse().ok()?));
            rest = &stripped[end + 1..];
        }
    }
    Some(out)
}

fn leading_spaces(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Strips indentation and any `- ` item markers; returns (column of content, content).
fn item_content(line: &str) -> (usize, &str) {
    let mut col = leading_spaces(line);
    let mut rest = &line[col..];
    while let Some(r) = rest.strip_prefix("- ") {
        let extra = r.len() - r.trim_start_matches(' ').len();
        col += 2 + extra;
        rest = &r[extra..];
    }
    (col, rest)
}

fn key_matches(content: &str, key: &str) -> bool {
    let content = content.trim_start_matches(['"', '\'']);
    if content.len() < key.len() || !content.is_char_boundary(key.len()) {
        return false;
    }
    let (head, tail) = content.split_at(key.len());
    head.eq_ignore_ascii_case(key)
        && tail
            .trim_start_matches(['"', '\''])
            .trim_start()
            .starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::locate;

    const DOC: &str = "name: x\nsteps:\n- name: a\n  phases:\n  - tuningSet: A\n    replicasPerNamespace: 1\n- name: b\n  measurements:\n  - Method: M\n    Params:\n      action: start\n  - method: N\n";

    #[test]
    fn finds_nested_fields() {
        assert_eq!(locate(DOC, "name"), Some((1, 1)));
        assert_eq!(locate(DOC, "steps"), Some((2, 1)));
        assert_eq!(locate(DOC, "steps[0]"), Some((3, 1)));
        assert_eq!(locate(DOC, "steps[0].phases[0].tuningSet"), Some((5, 5)));
        assert_eq!(
            locate(DOC, "steps[0].phases[0].replicasPerNamespace"),
            Some((6, 5))
        );
        assert_eq!(locate(DOC, "steps[1].measurements[0].method"), Some((9, 5)));
        assert_eq!(
            locate(DOC, "steps[1].measurements[0].params.action"),
            Some((11, 7))
        );
        assert_eq!(
            locate(DOC, "steps[1].measurements[1].method"),
            Some((12, 5))
        );
        assert_eq!(locate(DOC, "steps[2]"), None);
        assert_eq!(locate(DOC, "nothere"), None);
    }
}
