from tests.contracts.market.orders import *
from tests.contracts.market.helpers import *
def test_probe(market, make_order, sign, alice, bob, carol, chain, gusd):
    for i in range(3):
        o = make_order(alice, salt=i)
        r = market.fillOrder(o.as_tuple(), sign(o, alice), 4000, meter_id("bob"), sender=bob)
        print("signed fill gas", r.gas_used)
    gusd.approve(market, 2**256-1, sender=carol)
    o = make_order(alice, salt=9)
    r = market.fillOrder(o.as_tuple(), sign(o, alice), 4000, meter_id("carol"), sender=carol)
    print("signed fill gas max-approval", r.gas_used)
    r = market.fillOrder(o.as_tuple(), sign(o, alice), 4000, meter_id("carol"), sender=carol)
    print("second partial fill gas max-approval", r.gas_used)
