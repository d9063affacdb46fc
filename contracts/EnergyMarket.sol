// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC1155} from "@openzeppelin/contracts/token/ERC1155/IERC1155.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";

import {IEnergyMarket} from "./interfaces/IEnergyMarket.sol";

/**
 * @title EnergyMarket
 * @notice GridLedger peer-to-peer market for metered energy (escrowed delivery contracts settled
 * on meter data) and Renewable Energy Certificates (atomic ERC-1155 swaps).
 *
 * Orders are either listed on-chain ({listOrder}) or signed off-chain with EIP-712
 * (`eth_signTypedData_v4`, or ERC-1271 for contract wallets) and filled by a taker
 * ({fillOrder}) or matched by an operator ({matchOrders}).
 *
 * Money flow for ENERGY: fill → buyer's payment escrowed here and the seller's collateral locked
 * in its market balance → {settle} after deliveryEnd credits the seller's gross, pays the penalty
 * from the collateral to the buyer, refunds the buyer the unused escrow and unlocks the collateral
 * → {withdraw} pays an account's free balance. If nobody settles by deliveryEnd + the trade's
 * reclaimGracePeriod, {reclaim} credits the whole escrow back to the buyer and unlocks the
 * collateral (a late settlement is not the seller's fault).
 *
 * Seller collateral: each account holds a balance here ({deposit}, plus payouts and refunds);
 * part of it is locked as collateral of the account's open ENERGY sales. An ENERGY fill locks
 * {collateralFor} the trade: the penalty the seller would owe on zero delivery, so the penalty is
 * always covered and not delivering costs the seller up to that amount. The grace period is a term of the trade, fixed when it is made (like the tolerance and
 * penalty): the admin's {setReclaimGracePeriod} only applies to later trades, and never goes
 * below {MIN_RECLAIM_GRACE_PERIOD}, so the settler always has time to settle on meter data.
 * Invariant: totalEscrowed() + totalWithdrawable() <= paymentToken.balanceOf(this), where
 * totalWithdrawable() is the sum of all account balances (free and locked).
 *
 * Units: energy in Wh, price in token base units per kWh, payment = ceil(quantityWh * price /
 * 1000): the buyer's payment rounds UP, so no Wh is ever bought for free. At settlement the
 * seller's gross is ceil(delivered * price / 1000) <= escrow and the buyer is refunded
 * escrow - gross exactly: escrow = gross + refund; the penalty (floored, at most the collateral)
 * moves from the seller's balance to the buyer's. No unit is created or lost.
 */
contract EnergyMarket is IEnergyMarket, AccessControl, EIP712, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using SafeCast for uint256;

    /// @notice Matches signed/listed bids and offers ({matchOrders}).
    bytes32 public constant OPERATOR_ROLE = keccak256("OPERATOR_ROLE");
    /// @notice Reports metered delivery ({settle}, {settleBatch}).
    bytes32 public constant SETTLER_ROLE = keccak256("SETTLER_ROLE");

    /// @notice EIP-712 type of {Order}.
    // The EIP-712 type string is fixed by the order struct; it cannot be shortened to 32 bytes.
    // solhint-disable-next-line gas-small-strings
    string public constant ORDER_TYPE =
        "Order(address maker,uint8 side,uint8 product,uint256 assetId,bytes32 meterId,uint128 quantityWh,"
        "uint128 price,uint64 deliveryStart,uint64 deliveryEnd,uint64 expiry,uint64 nonce,uint256 salt)";
    /// @notice keccak256 of {ORDER_TYPE}.
    bytes32 public constant ORDER_TYPEHASH = keccak256(bytes(ORDER_TYPE));

    /// @notice Length of a delivery slot; periods start and end on slot boundaries.
    uint64 public constant SLOT_SECONDS = 900;
    /// @notice Shortest reclaim grace period the admin may set: time for meter data to arrive and
    /// the settler to settle after deliveryEnd before the buyer may take the escrow back.
    uint64 public constant MIN_RECLAIM_GRACE_PERIOD = 4 hours;
    /// @notice Longest reclaim grace period the admin may set.
    uint64 public constant MAX_RECLAIM_GRACE_PERIOD = 30 days;

    uint256 private constant _WH_PER_KWH = 1000;
    uint256 private constant _BPS = 10_000;
    bytes32 private constant _STATUS_MASK = bytes32(uint256(0xff));

    /// @dev Per-order state in one slot.
    struct OrderRecord {
        uint128 filledWh;
        bool listed;
        bool cancelled;
    }

    /// @dev An account's nonce and market balance in one slot, so a maker-seller's collateral is
    /// locked with one warm write (the nonce check has read the slot). `balance` is everything the
    /// account holds here; `locked` (<= balance) is the collateral of its open ENERGY sales.
    /// 96 bits hold any balance of a token whose supply is below 2^96 (7.9e22 gUSD).
    struct Account {
        uint64 nonce;
        uint96 balance;
        uint96 locked;
    }

    /// @dev Hot market state packed in one slot: read once and written once per fill.
    struct MarketState {
        uint64 lastTradeId;
        uint128 totalEscrowed;
        uint16 toleranceBps;
        uint16 penaltyBps;
        uint32 reclaimGracePeriod;
    }

    IERC20 private immutable _paymentToken;
    IERC1155 private immutable _certificates;

    MarketState private _state;
    uint256 private _totalWithdrawable;
    // Written through `OrderRecord storage` pointers ({listOrder}, {cancelOrder}, {_useOrder}),
    // which Slither does not follow.
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 orderHash => OrderRecord) private _orders;
    mapping(address account => Account) private _accounts;
    /// @dev keccak256(abi.encode(trade)) with its low byte replaced by the TradeStatus.
    mapping(uint256 tradeId => bytes32) private _tradeRecords;

    /**
     * @param admin Receives DEFAULT_ADMIN_ROLE.
     * @param paymentToken ERC-20 used for payments (e.g. GridUSD).
     * @param certificates ERC-1155 REC registry (token id = certificate id, amount = Wh).
     * @param toleranceBps_ Shortfall share (bps of contracted Wh) that is not penalised.
     * @param penaltyBps_ Penalty on penalised shortfall Wh, in bps of its value.
     * @param reclaimGracePeriod_ Seconds after deliveryEnd from which the buyer may reclaim a trade
     * (fixed in each trade when it is made), within [MIN_RECLAIM_GRACE_PERIOD, MAX_RECLAIM_GRACE_PERIOD].
     *
     * Emits a {SettlementParametersUpdated} and a {ReclaimGracePeriodUpdated} event (from zero).
     */
    constructor(
        address admin,
        IERC20 paymentToken,
        IERC1155 certificates,
        uint16 toleranceBps_,
        uint16 penaltyBps_,
        uint64 reclaimGracePeriod_
    ) EIP712("GridLedger EnergyMarket", "1") {
        if (admin == address(0) || address(paymentToken) == address(0) || address(certificates) == address(0)) {
            revert EnergyMarketZeroAddress();
        }
        _checkSettlementParameters(toleranceBps_, penaltyBps_);
        _checkGracePeriod(reclaimGracePeriod_);
        _paymentToken = paymentToken;
        _certificates = certificates;
        _state.toleranceBps = toleranceBps_;
        _state.penaltyBps = penaltyBps_;
        _state.reclaimGracePeriod = uint32(reclaimGracePeriod_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        // the initial terms as events too: the indexer mirrors them from the deployment on
        emit SettlementParametersUpdated(0, toleranceBps_, 0, penaltyBps_);
        emit ReclaimGracePeriodUpdated(0, reclaimGracePeriod_);
    }

    // ================================================================ orders

    /**
     * @notice Lists `order` on-chain so it can be filled or matched without a signature.
     *
     * Requirements:
     * - the caller must be `order.maker`.
     * - the order must not be listed or cancelled already, nor expired.
     * - `order.nonce` must equal the maker's current nonce; `order.quantityWh` must be non-zero.
     * - ENERGY orders need a 15-minute aligned delivery period and a `meterId` the maker owns.
     *
     * Emits an {OrderListed} event.
     */
    function listOrder(Order calldata order) external returns (bytes32 hash) {
        if (order.maker != msg.sender) revert EnergyMarketUnauthorizedMaker(msg.sender, order.maker);
        hash = _hashOrderCanonical(order);
        OrderRecord storage record = _orders[hash];
        if (record.cancelled) revert EnergyMarketOrderCancelled(hash);
        if (record.listed) revert EnergyMarketOrderAlreadyListed(hash);
        if (block.timestamp > order.expiry) revert EnergyMarketOrderExpired(hash, order.expiry);
        uint64 current = _accounts[order.maker].nonce;
        if (order.nonce != current) revert EnergyMarketStaleNonce(hash, order.nonce, current);
        if (order.quantityWh == 0) revert EnergyMarketZeroQuantity(hash);
        if (order.product == Product.Energy) {
            _checkPeriod(order.deliveryStart, order.deliveryEnd);
            _checkMeterOwner(order.maker, order.meterId);
        }
        record.listed = true;
        emit OrderListed(hash, order.maker, order);
    }

    /**
     * @notice Cancels one order (signed or listed); it can never be filled again.
     *
     * Requirements:
     * - the caller must be `order.maker`.
     * - the order must not be cancelled already.
     *
     * Emits an {OrderCancelled} event.
     */
    function cancelOrder(Order calldata order) external {
        if (order.maker != msg.sender) revert EnergyMarketUnauthorizedMaker(msg.sender, order.maker);
        bytes32 hash = _hashOrderCanonical(order);
        OrderRecord storage record = _orders[hash];
        if (record.cancelled) revert EnergyMarketOrderCancelled(hash);
        record.cancelled = true;
        emit OrderCancelled(hash, msg.sender);
    }

    /**
     * @notice Cancels all of the caller's orders at once by bumping its nonce; only orders made
     * under the new nonce are valid afterwards.
     *
     * Emits a {NonceIncremented} event.
     */
    function incrementNonce() external returns (uint64 newNonce) {
        Account storage account = _accounts[msg.sender];
        newNonce = account.nonce + 1;
        account.nonce = newNonce;
        emit NonceIncremented(msg.sender, newNonce);
    }

    /**
     * @notice Fills `quantityWh` of a maker's order as taker (the caller takes the other side).
     * ENERGY: the buyer's payment is escrowed here until settlement; returns the new trade id.
     * REC: certificates go to the buyer and payment to the seller in this transaction.
     * `signature` is the maker's EIP-712 signature (EOA or ERC-1271); empty for a listed order.
     * `takerMeterId` is the caller's meter (ENERGY only; ignored for REC).
     *
     * Requirements:
     * - the caller must not be the maker.
     * - the order must be validly signed by its maker, or listed when `signature` is empty.
     * - the order must not be expired or cancelled, and its nonce must be the maker's current one.
     * - `quantityWh` must be non-zero and at most the order's unfilled quantity.
     * - ENERGY: 15-minute aligned delivery period that has not started yet (gate closure),
     *   and each side trades from a meter it owns (the top 20 bytes of a meter id are its
     *   owner's address).
     * - the buyer must have approved the payment (ENERGY/REC) and the seller the certificates (REC).
     *
     * Emits a {TradeCreated} event (ENERGY) or a {CertificatesTraded} event (REC).
     */
    function fillOrder(
        Order calldata order,
        bytes calldata signature,
        uint128 quantityWh,
        bytes32 takerMeterId
    ) external nonReentrant returns (uint256 tradeId) {
        if (order.maker == msg.sender) revert EnergyMarketSelfTrade(msg.sender);
        bytes32 hash = _hashOrder(order);
        _useOrder(order, hash, signature, quantityWh);

        // A memory struct starts zeroed; every field but the settlement terms is set below and
        // {_executeTrade} sets those (ENERGY) or leaves them 0 (REC).
        // slither-disable-next-line uninitialized-local
        Trade memory trade;
        trade.quantityWh = quantityWh;
        trade.price = order.price;
        trade.deliveryStart = order.deliveryStart;
        trade.deliveryEnd = order.deliveryEnd;
        if (order.side == Side.Sell) {
            (trade.seller, trade.sellerMeter) = (order.maker, order.meterId);
            (trade.buyer, trade.buyerMeter) = (msg.sender, takerMeterId);
            return _executeTrade(order.product, order.assetId, trade, hash, bytes32(0));
        } else {
            (trade.seller, trade.sellerMeter) = (msg.sender, takerMeterId);
            (trade.buyer, trade.buyerMeter) = (order.maker, order.meterId);
            return _executeTrade(order.product, order.assetId, trade, bytes32(0), hash);
        }
    }

    /**
     * @notice Matches a bid with an offer for `quantityWh` at the resting order's price
     * (`bid.price` if `bidIsResting`, else `offer.price`). Each signature may be empty for a
     * listed order. Returns the new trade id.
     *
     * Requirements:
     * - the caller must have OPERATOR_ROLE.
     * - `bid` must be a BUY and `offer` a SELL order of different makers.
     * - both orders must have the same product, assetId and delivery period.
     * - `bid.price >= offer.price`.
     * - both orders must pass every check of {fillOrder} for `quantityWh`.
     *
     * Emits a {TradeCreated} event (ENERGY) or a {CertificatesTraded} event (REC).
     */
    function matchOrders(
        Order calldata bid,
        bytes calldata bidSignature,
        Order calldata offer,
        bytes calldata offerSignature,
        uint128 quantityWh,
        bool bidIsResting
    ) external onlyRole(OPERATOR_ROLE) nonReentrant returns (uint256 tradeId) {
        bytes32 bidHash = _hashOrder(bid);
        bytes32 offerHash = _hashOrder(offer);
        if (bid.side != Side.Buy) revert EnergyMarketWrongSide(bidHash, bid.side);
        if (offer.side != Side.Sell) revert EnergyMarketWrongSide(offerHash, offer.side);
        if (bid.maker == offer.maker) revert EnergyMarketSelfTrade(bid.maker);
        if (
            bid.product != offer.product ||
            bid.assetId != offer.assetId ||
            bid.deliveryStart != offer.deliveryStart ||
            bid.deliveryEnd != offer.deliveryEnd
        ) revert EnergyMarketOrdersMismatch(bidHash, offerHash);
        if (bid.price < offer.price) revert EnergyMarketPricesDoNotCross(bid.price, offer.price);
        _useOrder(bid, bidHash, bidSignature, quantityWh);
        _useOrder(offer, offerHash, offerSignature, quantityWh);

        // A memory struct starts zeroed; every field but the settlement terms is set below and
        // {_executeTrade} sets those (ENERGY) or leaves them 0 (REC).
        // slither-disable-next-line uninitialized-local
        Trade memory trade;
        trade.seller = offer.maker;
        trade.buyer = bid.maker;
        trade.sellerMeter = offer.meterId;
        trade.buyerMeter = bid.meterId;
        trade.quantityWh = quantityWh;
        trade.price = bidIsResting ? bid.price : offer.price;
        trade.deliveryStart = offer.deliveryStart;
        trade.deliveryEnd = offer.deliveryEnd;
        return _executeTrade(offer.product, offer.assetId, trade, offerHash, bidHash);
    }

    // ============================================================ settlement

    /**
     * @notice Settles ENERGY trade `tradeId` on `deliveredWh` metered for its period.
     * delivered = min(deliveredWh, quantityWh); escrow = ceil(quantityWh * price / 1000);
     * gross = ceil(delivered * price / 1000) (<= escrow; the whole escrow on full delivery);
     * penalised Wh = shortfall beyond `quantityWh * toleranceBps / 10000` (floored);
     * penalty = floor(floor(penalisedWh * price / 1000) * penaltyBps / 10000) (at most the
     * collateral locked at fill, {collateralFor}, which is the penalty on zero delivery);
     * the seller is credited gross - penalty and its collateral unlocked; the buyer is credited
     * escrow - gross + penalty.
     *
     * Requirements:
     * - the caller must have SETTLER_ROLE.
     * - `trade` must be the trade recorded under `tradeId`, which must still be open.
     * - `block.timestamp >= trade.deliveryEnd`.
     *
     * Emits a {TradeSettled} event.
     */
    function settle(
        Trade calldata trade,
        uint256 tradeId,
        uint64 deliveredWh
    ) external onlyRole(SETTLER_ROLE) nonReentrant {
        uint256 escrow = _settle(trade, tradeId, deliveredWh);
        _state.totalEscrowed -= uint128(escrow);
        _totalWithdrawable += escrow;
    }

    /**
     * @notice Settles several ENERGY trades as {settle} does; all or nothing.
     *
     * Requirements:
     * - the caller must have SETTLER_ROLE.
     * - the three arrays must have the same length.
     * - every trade must satisfy the requirements of {settle}.
     *
     * Emits a {TradeSettled} event per trade.
     */
    function settleBatch(
        Trade[] calldata trades,
        uint256[] calldata tradeIds,
        uint64[] calldata deliveredWh
    ) external onlyRole(SETTLER_ROLE) nonReentrant {
        uint256 count = trades.length;
        if (tradeIds.length != count || deliveredWh.length != count) {
            revert EnergyMarketLengthMismatch(count, tradeIds.length, deliveredWh.length);
        }
        uint256 released = 0;
        for (uint256 i; i < count; ++i) {
            released += _settle(trades[i], tradeIds[i], deliveredWh[i]);
        }
        _state.totalEscrowed -= uint128(released);
        _totalWithdrawable += released;
    }

    /**
     * @notice Credits the whole escrow of an unsettled trade back to its buyer and unlocks the
     * seller's collateral (nobody settled in time, which is not the seller's fault). Anyone may
     * call; the refund always goes to `trade.buyer`.
     *
     * Requirements:
     * - `trade` must be the trade recorded under `tradeId`, which must still be open.
     * - `block.timestamp >= trade.deliveryEnd + trade.reclaimGracePeriod` (the grace period in
     *   force when the trade was made; later {setReclaimGracePeriod} calls do not change it).
     *
     * Emits a {TradeReclaimed} event.
     */
    function reclaim(Trade calldata trade, uint256 tradeId) external nonReentrant {
        _closeTrade(trade, tradeId, TradeStatus.Reclaimed);
        uint256 deadline = uint256(trade.deliveryEnd) + trade.reclaimGracePeriod;
        if (block.timestamp < deadline) revert EnergyMarketReclaimTooEarly(tradeId, deadline);
        uint256 escrow = _payment(trade.quantityWh, trade.price);
        uint256 collateral = _collateralFor(trade.quantityWh, trade.price, trade.toleranceBps, trade.penaltyBps);
        if (collateral != 0) _accounts[trade.seller].locked -= uint96(collateral);
        _credit(_accounts[trade.buyer], escrow);
        _state.totalEscrowed -= uint128(escrow);
        _totalWithdrawable += escrow;
        emit TradeReclaimed(tradeId, trade.buyer, escrow);
    }

    /**
     * @notice Moves `amount` of the caller's payment token into its market balance, where it
     * backs the collateral of its ENERGY sales (and can be withdrawn while not locked).
     *
     * Requirements:
     * - `amount` must be non-zero and the caller must have approved it to this contract.
     *
     * Emits a {Deposited} event.
     */
    function deposit(uint256 amount) external nonReentrant {
        if (amount == 0) revert EnergyMarketZeroDeposit(msg.sender);
        _credit(_accounts[msg.sender], amount);
        _totalWithdrawable += amount;
        emit Deposited(msg.sender, amount);
        _paymentToken.safeTransferFrom(msg.sender, address(this), amount);
    }

    /**
     * @notice Pays the caller its whole free balance ({withdrawable}): its market balance minus
     * the collateral locked for its open ENERGY sales.
     *
     * Requirements:
     * - the caller's free balance must be non-zero.
     *
     * Emits a {Withdrawn} event.
     */
    function withdraw() external nonReentrant returns (uint256 amount) {
        Account storage account = _accounts[msg.sender];
        uint96 locked = account.locked;
        amount = account.balance - locked;
        if (amount == 0) revert EnergyMarketNothingToWithdraw(msg.sender);
        account.balance = locked;
        _totalWithdrawable -= amount;
        emit Withdrawn(msg.sender, amount);
        _paymentToken.safeTransfer(msg.sender, amount);
    }

    // ================================================================= admin

    /**
     * @notice Sets the settlement terms applied to trades made from now on (open trades keep
     * the terms recorded in them).
     *
     * Requirements:
     * - the caller must have DEFAULT_ADMIN_ROLE.
     * - both values must be at most 10000.
     *
     * Emits a {SettlementParametersUpdated} event.
     */
    function setSettlementParameters(
        uint16 newToleranceBps,
        uint16 newPenaltyBps
    ) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkSettlementParameters(newToleranceBps, newPenaltyBps);
        MarketState storage state = _state;
        emit SettlementParametersUpdated(state.toleranceBps, newToleranceBps, state.penaltyBps, newPenaltyBps);
        state.toleranceBps = newToleranceBps;
        state.penaltyBps = newPenaltyBps;
    }

    /**
     * @notice Sets the time after deliveryEnd from which unsettled trades made from now on can be
     * reclaimed (open trades keep the grace period recorded in them).
     *
     * Requirements:
     * - the caller must have DEFAULT_ADMIN_ROLE.
     * - `period` must be at least {MIN_RECLAIM_GRACE_PERIOD} and at most {MAX_RECLAIM_GRACE_PERIOD}.
     *
     * Emits a {ReclaimGracePeriodUpdated} event.
     */
    function setReclaimGracePeriod(uint64 period) external onlyRole(DEFAULT_ADMIN_ROLE) {
        _checkGracePeriod(period);
        emit ReclaimGracePeriodUpdated(_state.reclaimGracePeriod, period);
        _state.reclaimGracePeriod = uint32(period);
    }

    // ================================================================= views

    /// @notice The EIP-712 digest of `order` (what the maker signs and the key of its state).
    function orderHash(Order calldata order) external view returns (bytes32) {
        return _hashOrder(order);
    }

    /// @notice Fill state of `order`: hash, state, listing, filled and remaining Wh. Does not check signatures.
    function orderStatus(Order calldata order) external view returns (OrderStatus memory status) {
        status.orderHash = _hashOrder(order);
        OrderRecord memory record = _orders[status.orderHash];
        status.listed = record.listed;
        status.filledWh = record.filledWh;
        status.remainingWh = order.quantityWh > record.filledWh ? order.quantityWh - record.filledWh : 0;
        if (record.cancelled) status.state = OrderState.Cancelled;
        else if (status.remainingWh == 0) status.state = OrderState.Filled;
        else if (order.nonce != _accounts[order.maker].nonce) status.state = OrderState.StaleNonce;
        else if (block.timestamp > order.expiry) status.state = OrderState.Expired;
        else status.state = OrderState.Fillable;
    }

    /// @notice Wh already filled of the order with hash `hash`.
    function filled(bytes32 hash) external view returns (uint128) {
        return _orders[hash].filledWh;
    }

    /// @notice Whether the order with hash `hash` was listed on-chain.
    function isListed(bytes32 hash) external view returns (bool) {
        return _orders[hash].listed;
    }

    /// @notice Whether the order with hash `hash` was cancelled.
    function isCancelled(bytes32 hash) external view returns (bool) {
        return _orders[hash].cancelled;
    }

    /// @notice Current cancel-all counter of `maker`; valid orders carry this value.
    function nonces(address maker) external view returns (uint64) {
        return _accounts[maker].nonce;
    }

    /// @notice keccak256(abi.encode(trade)); its top 31 bytes are stored as the trade record.
    function tradeHash(Trade calldata trade) external pure returns (bytes32) {
        return keccak256(abi.encode(trade));
    }

    /// @notice Stored record of `tradeId`: trade hash with the TradeStatus in its low byte (0 if none).
    function tradeRecord(uint256 tradeId) external view returns (bytes32) {
        return _tradeRecords[tradeId];
    }

    /// @notice Status of trade `tradeId` (None for unknown ids and REC swaps).
    function tradeStatus(uint256 tradeId) external view returns (TradeStatus) {
        return TradeStatus(uint8(uint256(_tradeRecords[tradeId] & _STATUS_MASK)));
    }

    /// @notice Id of the latest trade (ENERGY or REC); ids are sequential from 1.
    function lastTradeId() external view returns (uint256) {
        return _state.lastTradeId;
    }

    /// @notice Payment held in escrow for open ENERGY trades.
    function totalEscrowed() external view returns (uint256) {
        return _state.totalEscrowed;
    }

    /// @notice Sum of all account balances held here (deposits and credits not yet withdrawn,
    /// including locked collateral).
    function totalWithdrawable() external view returns (uint256) {
        return _totalWithdrawable;
    }

    /// @notice Free balance `account` can {withdraw} (its balance minus locked collateral).
    function withdrawable(address account) external view returns (uint256) {
        Account memory record = _accounts[account];
        return record.balance - record.locked;
    }

    /// @notice Everything `account` holds in the market: free balance plus locked collateral.
    function balanceOf(address account) external view returns (uint256) {
        return _accounts[account].balance;
    }

    /// @notice Collateral of `account`'s open ENERGY sales, locked in its balance.
    function lockedCollateral(address account) external view returns (uint256) {
        return _accounts[account].locked;
    }

    /**
     * @notice Collateral an ENERGY sale of `quantityWh` at `price` locks under the given terms:
     * the penalty on zero delivery, floor(floor(penalisableWh * price / 1000) * penaltyBps / 10000)
     * with penalisableWh = quantityWh - floor(quantityWh * toleranceBps / 10000).
     */
    function collateralFor(
        uint128 quantityWh,
        uint128 price,
        uint16 toleranceBps_,
        uint16 penaltyBps_
    ) external pure returns (uint256) {
        _checkSettlementParameters(toleranceBps_, penaltyBps_);
        // Only terms a trade can have: its payment must fit in 128 bits (see {_penalty}). The cast
        // is the check (it reverts above 128 bits); its value is not needed.
        // slither-disable-next-line unused-return
        _payment(quantityWh, price).toUint128();
        return _collateralFor(quantityWh, price, toleranceBps_, penaltyBps_);
    }

    /// @notice Shortfall tolerance (bps of contracted Wh) applied to new trades.
    function toleranceBps() external view returns (uint16) {
        return _state.toleranceBps;
    }

    /// @notice Penalty (bps of the penalised shortfall's value) applied to new trades.
    function penaltyBps() external view returns (uint16) {
        return _state.penaltyBps;
    }

    /// @notice Seconds after deliveryEnd from which an unsettled trade made now could be reclaimed.
    function reclaimGracePeriod() external view returns (uint64) {
        return _state.reclaimGracePeriod;
    }

    /// @notice The payment ERC-20.
    function paymentToken() external view returns (IERC20) {
        return _paymentToken;
    }

    /// @notice The ERC-1155 certificate registry traded as REC.
    function certificates() external view returns (IERC1155) {
        return _certificates;
    }

    /// @notice The EIP-712 domain separator (name "GridLedger EnergyMarket", version "1").
    // solhint-disable-next-line func-name-mixedcase
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    // ============================================================== internal

    /// @dev EIP-712 digest of `order` with the order validated and copied by the ABI coder; used
    /// where the order is stored or emitted ({listOrder}, {cancelOrder}).
    function _hashOrderCanonical(Order calldata order) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(ORDER_TYPEHASH, order)));
    }

    /// @dev EIP-712 digest of `order`. The struct hash is taken straight over the 12 static ABI
    /// words of the calldata struct (identical to `abi.encode(ORDER_TYPEHASH, order)` for
    /// canonically encoded input; non-canonical words only yield a digest nobody signed or listed).
    function _hashOrder(Order calldata order) private view returns (bytes32) {
        bytes32 structHash;
        bytes32 typeHash = ORDER_TYPEHASH;
        // Hashes the calldata words in place: saves the ABI re-encoding copy on every fill.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, typeHash)
            calldatacopy(add(ptr, 0x20), order, 0x180)
            structHash := keccak256(ptr, 0x1a0)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @dev Checks every fill condition of `order` and records `quantityWh` as filled.
    function _useOrder(Order calldata order, bytes32 hash, bytes calldata signature, uint128 quantityWh) private {
        if (block.timestamp > order.expiry) revert EnergyMarketOrderExpired(hash, order.expiry);
        OrderRecord storage slot = _orders[hash];
        OrderRecord memory record = slot;
        if (record.cancelled) revert EnergyMarketOrderCancelled(hash);
        uint64 current = _accounts[order.maker].nonce;
        if (order.nonce != current) revert EnergyMarketStaleNonce(hash, order.nonce, current);
        if (quantityWh == 0) revert EnergyMarketZeroQuantity(hash);
        uint128 remaining = order.quantityWh > record.filledWh ? order.quantityWh - record.filledWh : 0;
        if (quantityWh > remaining) revert EnergyMarketInsufficientRemaining(hash, quantityWh, remaining);
        if (order.product == Product.Energy) {
            _checkPeriod(order.deliveryStart, order.deliveryEnd);
            // Gate closure: a delivery period can only be traded before it starts.
            if (block.timestamp >= order.deliveryStart) revert EnergyMarketGateClosed(hash, order.deliveryStart);
        }
        if (signature.length == 0) {
            if (!record.listed) revert EnergyMarketOrderNotListed(hash);
        } else if (!SignatureChecker.isValidSignatureNowCalldata(order.maker, hash, signature)) {
            revert EnergyMarketInvalidSignature(hash, order.maker);
        }
        slot.filledWh = record.filledWh + quantityWh;
    }

    /// @dev Records and executes a trade whose parties, meters, quantity, price and period are set.
    function _executeTrade(
        Product product,
        uint256 assetId,
        Trade memory trade,
        bytes32 sellOrderHash,
        bytes32 buyOrderHash
    ) private returns (uint256 tradeId) {
        uint256 payment = _payment(trade.quantityWh, trade.price);
        MarketState storage state = _state;
        tradeId = uint256(state.lastTradeId) + 1;
        if (product == Product.Energy) {
            _checkMeterOwner(trade.seller, trade.sellerMeter);
            _checkMeterOwner(trade.buyer, trade.buyerMeter);
            trade.toleranceBps = state.toleranceBps;
            trade.penaltyBps = state.penaltyBps;
            trade.reclaimGracePeriod = state.reclaimGracePeriod;
            _lockCollateral(trade);
            (state.lastTradeId, state.totalEscrowed) = (uint64(tradeId), state.totalEscrowed + payment.toUint128());
            _tradeRecords[tradeId] = _record(_hashTradeMemory(trade), TradeStatus.Open);
            emit TradeCreated(tradeId, sellOrderHash, buyOrderHash, trade, payment);
            // `trade.buyer` authorised this payment: it is the caller ({fillOrder}) or the maker of
            // an order checked by {_useOrder} (EIP-712/ERC-1271 signature or its own listing).
            // slither-disable-next-line arbitrary-send-erc20
            _paymentToken.safeTransferFrom(trade.buyer, address(this), payment);
        } else {
            state.lastTradeId = uint64(tradeId);
            emit CertificatesTraded(
                tradeId,
                sellOrderHash,
                buyOrderHash,
                trade.seller,
                trade.buyer,
                assetId,
                trade.quantityWh,
                trade.price,
                payment
            );
            _certificates.safeTransferFrom(trade.seller, trade.buyer, assetId, trade.quantityWh, "");
            // `trade.buyer` authorised this payment, as for ENERGY above.
            // slither-disable-next-line arbitrary-send-erc20
            _paymentToken.safeTransferFrom(trade.buyer, trade.seller, payment);
        }
    }

    /// @dev Settles one trade and credits both parties; returns the escrow it released.
    function _settle(Trade calldata trade, uint256 tradeId, uint64 deliveredWh) private returns (uint256 escrow) {
        _closeTrade(trade, tradeId, TradeStatus.Settled);
        if (block.timestamp < trade.deliveryEnd) revert EnergyMarketSettlementTooEarly(tradeId, trade.deliveryEnd);

        uint256 contracted = trade.quantityWh;
        uint256 delivered = deliveredWh < contracted ? deliveredWh : contracted;
        escrow = _payment(contracted, trade.price);
        // Rounded up like the escrow, so delivered energy is never free and full delivery pays it all.
        uint256 gross = _payment(delivered, trade.price);
        (uint256 penalty, uint256 collateral) = _penaltyAndCollateral(trade, contracted - delivered);
        _settleSeller(trade.seller, gross, penalty, collateral);
        uint256 refund = escrow - gross;
        if (refund + penalty != 0) _credit(_accounts[trade.buyer], refund + penalty);
        emit TradeSettled(tradeId, uint64(delivered), gross, penalty, refund);
    }

    /// @dev The penalty on `shortfallWh` of `trade` and the collateral locked for it at fill.
    function _penaltyAndCollateral(
        Trade calldata trade,
        uint256 shortfallWh
    ) private pure returns (uint256 penalty, uint256 collateral) {
        uint256 tolerance = (uint256(trade.quantityWh) * trade.toleranceBps) / _BPS;
        if (shortfallWh > tolerance) penalty = _penalty(shortfallWh - tolerance, trade.price, trade.penaltyBps);
        collateral = _penalty(trade.quantityWh - tolerance, trade.price, trade.penaltyBps);
    }

    /// @dev Credits a seller its gross minus the penalty and unlocks the trade's collateral.
    function _settleSeller(address seller, uint256 gross, uint256 penalty, uint256 collateral) private {
        Account storage account = _accounts[seller];
        Account memory record = account;
        // penalty <= collateral <= locked <= balance, so the balance cannot underflow.
        (account.balance, account.locked) = (
            (uint256(record.balance) + gross - penalty).toUint96(),
            record.locked - uint96(collateral)
        );
    }

    /// @dev Locks the collateral of new ENERGY `trade` (terms set) in its seller's balance.
    function _lockCollateral(Trade memory trade) private {
        uint256 collateral = _collateralFor(trade.quantityWh, trade.price, trade.toleranceBps, trade.penaltyBps);
        if (collateral == 0) return;
        Account storage seller = _accounts[trade.seller];
        uint256 word;
        // One read and one write of the packed {Account} slot (nonce | balance << 64 | locked << 160);
        // the compiler would read it three times.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            word := sload(seller.slot)
        }
        uint256 locked = word >> 160;
        uint256 free = uint96(word >> 64) - locked;
        if (free < collateral) revert EnergyMarketInsufficientCollateral(trade.seller, collateral, free);
        // collateral <= free, so locked + collateral <= balance < 2^96: the sum stays in its field.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            sstore(seller.slot, add(word, shl(160, collateral)))
        }
    }

    /// @dev See {collateralFor}: the penalty on zero delivery.
    function _collateralFor(
        uint256 quantityWh,
        uint256 price,
        uint256 toleranceBps_,
        uint256 penaltyBps_
    ) private pure returns (uint256) {
        // Callers pass a trade's terms (both bps <= 10000), so the tolerance is at most quantityWh.
        unchecked {
            return _penalty(quantityWh - (quantityWh * toleranceBps_) / _BPS, price, penaltyBps_);
        }
    }

    /// @dev Adds `amount` to an account's balance.
    function _credit(Account storage account, uint256 amount) private {
        account.balance = (uint256(account.balance) + amount).toUint96();
    }

    /// @dev Penalty on `penalisedWh` at `price`: floor(floor(penalisedWh * price / 1000) * bps / 10000).
    function _penalty(uint256 penalisedWh, uint256 price, uint256 bps) private pure returns (uint256) {
        // As specified ({settle}): the penalised Wh's value is floored to token units like every
        // amount, then penaltyBps of it is taken; multiplying first would change settled amounts.
        // Unchecked (a fill costs gas enough): penalisedWh <= quantityWh of a trade whose payment
        // ceil(quantityWh * price / 1000) fits in 128 bits and bps <= 10000, so nothing overflows.
        unchecked {
            // slither-disable-next-line divide-before-multiply
            return (((penalisedWh * price) / _WH_PER_KWH) * bps) / _BPS;
        }
    }

    /// @dev Verifies `trade` against the open record of `tradeId` and marks it `status`.
    function _closeTrade(Trade calldata trade, uint256 tradeId, TradeStatus status) private {
        bytes32 stored = _tradeRecords[tradeId];
        bytes32 hash = keccak256(abi.encode(trade));
        if ((stored ^ hash) & ~_STATUS_MASK != 0 || stored == 0) revert EnergyMarketTradeMismatch(tradeId);
        if (uint256(stored & _STATUS_MASK) != uint256(TradeStatus.Open)) revert EnergyMarketTradeAlreadyClosed(tradeId);
        _tradeRecords[tradeId] = _record(hash, status);
    }

    /// @dev keccak256(abi.encode(trade)) without the copy: a static struct in memory is already
    /// laid out as its ABI encoding (11 clean words).
    function _hashTradeMemory(Trade memory trade) private pure returns (bytes32 hash) {
        // Hashes the struct in place: saves the abi.encode copy on every fill.
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            hash := keccak256(trade, 0x160)
        }
    }

    /// @dev Token base units for `quantityWh` at `price` per kWh, rounded up: ceil(q * p / 1000).
    function _payment(uint256 quantityWh, uint256 price) private pure returns (uint256) {
        // Both factors fit in 128 bits, so q * p + 999 cannot overflow.
        unchecked {
            return (quantityWh * price + (_WH_PER_KWH - 1)) / _WH_PER_KWH;
        }
    }

    function _record(bytes32 hash, TradeStatus status) private pure returns (bytes32) {
        return (hash & ~_STATUS_MASK) | bytes32(uint256(status));
    }

    function _checkPeriod(uint64 deliveryStart, uint64 deliveryEnd) private pure {
        if (deliveryStart % SLOT_SECONDS != 0 || deliveryEnd % SLOT_SECONDS != 0 || deliveryStart >= deliveryEnd) {
            revert EnergyMarketPeriodNotAligned(deliveryStart, deliveryEnd);
        }
    }

    /// @dev Meter ids are owner-bound: the top 20 bytes are the owner's address (RECRegistry).
    function _checkMeterOwner(address account, bytes32 meterId) private pure {
        if (address(bytes20(meterId)) != account) revert EnergyMarketNotMeterOwner(account, meterId);
    }

    function _checkSettlementParameters(uint16 newToleranceBps, uint16 newPenaltyBps) private pure {
        if (newToleranceBps > _BPS || newPenaltyBps > _BPS) {
            revert EnergyMarketInvalidSettlementParameters(newToleranceBps, newPenaltyBps);
        }
    }

    function _checkGracePeriod(uint64 period) private pure {
        if (period < MIN_RECLAIM_GRACE_PERIOD) revert EnergyMarketGracePeriodTooShort(period, MIN_RECLAIM_GRACE_PERIOD);
        if (period > MAX_RECLAIM_GRACE_PERIOD) revert EnergyMarketGracePeriodTooLong(period, MAX_RECLAIM_GRACE_PERIOD);
    }
}
