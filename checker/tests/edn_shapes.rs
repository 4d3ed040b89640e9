//! Every shape a Jepsen or Knossos EDN history comes in, each valid and, next to it, the same
//! shape made invalid by one wrong read or broken by one bad form (whose error must name the
//! line and column and show the text).

use std::path::Path;

use riptide_checker::{check, default_model, parse_history, CheckOptions, Format, Verdict};

fn verdict(edn: &str) -> Verdict {
    let h = parse_history(Path::new("h.edn"), edn, Format::Auto).unwrap();
    check(&h, default_model(&h), &CheckOptions::default())
        .unwrap()
        .verdict
}

fn error(edn: &str) -> String {
    parse_history(Path::new("h.edn"), edn, Format::Auto)
        .unwrap_err()
        .to_string()
}

/// Writes 1 then reads `read`: valid iff `read` is 1 (or nil, which Knossos does not check).
fn ops(read: &str) -> [String; 4] {
    [
        "{:process 0, :type :invoke, :f :write, :value 1}".into(),
        "{:process 0, :type :ok, :f :write, :value 1}".into(),
        "{:process 1, :type :invoke, :f :read, :value nil}".into(),
        format!("{{:process 1, :type :ok, :f :read, :value {read}}}"),
    ]
}

#[test]
fn one_op_map_a_line_as_jepsen_stores_it_with_index_and_time() {
    let h = |read: &str| {
        ops(read)
            .iter()
            .enumerate()
            .map(|(i, op)| op.replacen('{', &format!("{{:index {i}, :time {}, ", i * 1000), 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(verdict(&h("1")), Verdict::Valid);
    assert_eq!(verdict(&h("2")), Verdict::Invalid);
    // The same without :index and :time.
    assert_eq!(verdict(&ops("1").join("\n")), Verdict::Valid);
    assert_eq!(verdict(&ops("2").join("\n")), Verdict::Invalid);
}

#[test]
fn one_vector_or_one_list_of_ops_with_comments_between() {
    for (open, close) in [("[", "]"), ("(", ")")] {
        let h = |read: &str| {
            format!(
                "; a Jepsen history\n{open}{} ; the write\n;; then a read\n{}\n {}\n{}{close}\n; end\n",
                ops(read)[0],
                ops(read)[1],
                ops(read)[2],
                ops(read)[3]
            )
        };
        assert_eq!(verdict(&h("1")), Verdict::Valid, "{open}");
        assert_eq!(verdict(&h("2")), Verdict::Invalid, "{open}");
        let unclosed = format!("{open}{}\n{}", ops("1")[0], ops("1")[1]);
        let msg = error(&unclosed);
        assert!(msg.starts_with("h.edn:2: expected `"), "{msg}");
        assert!(msg.contains(&format!("`{close}` to close the")), "{msg}");
        assert!(msg.ends_with("at column 45"), "{msg}");
        let trailing = format!("{open}{}{close} {{:process 0}}", ops("1")[0]);
        let msg = error(&trailing);
        assert!(msg.contains("nothing after the"), "{msg}");
        assert!(msg.ends_with("at column 52"), "{msg}");
    }
}

#[test]
fn discarded_forms_are_skipped_wherever_they_stand() {
    let [w0, w1, r0, _] = ops("1");
    let bad_read = "{:process 1, :type :ok, :f :read, :value 2}";
    let good_read = "{:process 1, :type :ok, :f :read, :value 1 #_ :extra}";
    let h = format!("{w0}\n{w1}\n{r0}\n#_ {bad_read}\n{good_read}\n#_#_ {bad_read} {bad_read}\n");
    assert_eq!(verdict(&h), Verdict::Valid);
    let h = format!("{w0}\n{w1}\n{r0}\n{bad_read}\n#_ {good_read}\n");
    assert_eq!(verdict(&h), Verdict::Invalid);
    // `#_` inside values: the discarded form is not the value.
    let h = format!("{w0}\n{w1}\n{r0}\n{{:process 1, :type :ok, :f :read, :value #_ 2 1}}\n");
    assert_eq!(verdict(&h), Verdict::Valid);
    let h = format!("{w0}\n{w1}\n{r0}\n{{:process 1, :type :ok, :f :read, :value #_ 1 2}}\n");
    assert_eq!(verdict(&h), Verdict::Invalid);
    let msg = error(&format!("{w0}\n#_"));
    assert!(
        msg.starts_with("h.edn:2: expected a value, not the end"),
        "{msg}"
    );
}

#[test]
fn nested_maps_strings_with_escapes_and_tagged_literals_in_other_fields() {
    let [w0, w1, r0, _] = ops("1");
    let h = |read: &str| {
        format!(
            "{w0}\n{}\n{r0}\n#jepsen.history.Op{{:process 1, :type :ok, :f :read, :value {read}, \
             :time #inst \"2026-12-01T22:00:00.000-00:00\", :id #uuid \"5f0c0e1e-0000-4000-8000-000000000000\", \
             :ratio 1/3, :rate 0.5, :inf ##Inf, :c \\x, :set #{{1 2}}}}\n",
            w1.replacen(
                '}',
                r#", :error {:msg "said \"no\"\n\ttwice \\ caf\u00e9", :cause [:timeout {:ms 100}], :nodes ("n1" "n2")}}"#,
                1
            )
        )
    };
    assert_eq!(verdict(&h("1")), Verdict::Valid);
    assert_eq!(verdict(&h("2")), Verdict::Invalid);
    // A string that spans lines counts its lines.
    let h = format!("{w0}\n{{:process 0, :type :ok, :f :write, :value 1, :error \"a\nb\"}}\n{{:process 0 :type :ok :value \"\\q\"}}");
    let msg = error(&h);
    assert!(
        msg.starts_with("h.edn:4: expected a string escape"),
        "{msg}"
    );
    assert!(msg.ends_with("at column 31"), "{msg}"); // the backslash
}

#[test]
fn independent_tuples_in_a_list_file_are_split_by_key() {
    let h = |read: &str| {
        format!(
            "({{:process 0, :type :invoke, :f :write, :value [:a 1]}}
 {{:process 0, :type :ok, :f :write, :value [:a 1]}}
 {{:process 1, :type :invoke, :f :write, :value [:b 2]}}
 {{:process 1, :type :ok, :f :write, :value [:b 2]}}
 {{:process 2, :type :invoke, :f :read, :value [:a nil]}}
 {{:process 2, :type :ok, :f :read, :value [:a {read}]}})"
        )
    };
    assert_eq!(verdict(&h("1")), Verdict::Valid);
    assert_eq!(verdict(&h("2")), Verdict::Invalid);
}

#[test]
fn a_parse_error_names_line_and_column_and_shows_the_text() {
    let [w0, ..] = ops("1");
    let msg = error(&format!("{w0}\n{{:process 0 :type}}\n"));
    assert_eq!(
        msg,
        "h.edn:2: expected a map with an even number of forms, found `{:process 0 :type}` at column 18"
    );
    // A long line is shown around the column.
    let long = format!(
        "{w0}\n{{:index 1, :time 123456789, :process 0, :type :ok, :f :write, :value 1 ]}}"
    );
    let msg = error(&long);
    assert!(
        msg.starts_with("h.edn:2: expected a value, not a closing bracket, found `…"),
        "{msg}"
    );
    assert!(msg.contains(":value 1 ]}`"), "{msg}");
    assert!(msg.ends_with("at column 72"), "{msg}"); // the `]`
                                                     // An op map that parses but is not an op: the column is where the op starts.
    let msg = error(&format!("[{w0} {{:type :ok}}]"));
    assert!(msg.starts_with("h.edn:1: expected a `:process`"), "{msg}");
    assert!(msg.ends_with("found `{:type :ok}` at column 51"), "{msg}");
}
