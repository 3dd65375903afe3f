from tests.service.edge.nul_cases import check_nul_is_refused_everywhere


def test_the_nul_character_is_refused_where_a_text_column_would_hold_it(server):
    check_nul_is_refused_everywhere(server)
