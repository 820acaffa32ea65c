use super::strsim;

#[test]
fn edit_distance_counts_a_swap_as_one_edit() {
    assert_eq!(strsim("open", "open"), 0);
    assert_eq!(strsim("opne", "open"), 1);
    assert_eq!(strsim("opne", "done"), 2);
    assert_eq!(strsim("mark_lots", "mark_lost"), 1);
    assert_eq!(strsim("", "abc"), 3);
}
