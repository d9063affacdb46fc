"""Virtual power plants: aggregators group members' DERs (with consent) and dispatch them."""
