"""The REST facade: thin routes over services, problem details at the edge."""
