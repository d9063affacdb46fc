// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/**
 * @title IEnergyMarket
 * @notice Types, events, errors and external API of the GridLedger peer-to-peer energy market.
 *
 * Units used throughout:
 * - energy: integer Wh;
 * - price: payment-token base units per kWh;
 * - payment = quantityWh * price / 1000, rounded UP (ceil) per trade: every Wh costs at least
 *   one base unit. Settlement pays the seller ceil(delivered * price / 1000) minus the penalty
 *   and refunds the buyer the rest of the escrow plus the penalty. The penalty is paid from the
 *   seller's collateral, locked in its market balance at fill ({collateralFor}).
 * Delivery periods are aligned to 15-minute slots: start % 900 == 0, end % 900 == 0, start < end.
 */
interface IEnergyMarket {
    // ------------------------------------------------------------------ types

    /// @notice SELL = offer of energy/certificates, BUY = bid.
    enum Side {
        Sell,
        Buy
    }

    /// @notice ENERGY = physical delivery contract settled on metered data; REC = certificate swap.
    enum Product {
        Energy,
        Rec
    }

    /// @notice Lifecycle of an ENERGY trade, stored in the low byte of its trade record.
    enum TradeStatus {
        None,
        Open,
        Settled,
        Reclaimed
    }

    /// @notice Fillability of an order as seen by {orderStatus} (signature not checked).
    enum OrderState {
        Fillable,
        Filled,
        Cancelled,
        Expired,
        StaleNonce
    }

    /**
     * @notice An order, signed with EIP-712 (type string {ORDER_TYPE}) or listed on-chain.
     * @dev side and product are `uint8` in the EIP-712 type. `assetId` is the certificate id for
     * REC and 0 for ENERGY. `meterId` is the maker's meter for ENERGY. `nonce` is the maker's
     * cancel-all counter ({nonces}) the order was made under; `salt` makes otherwise equal orders
     * distinct. An order is valid while `block.timestamp <= expiry`.
     */
    struct Order {
        address maker;
        Side side;
        Product product;
        uint256 assetId;
        bytes32 meterId;
        uint128 quantityWh;
        uint128 price;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        uint64 expiry;
        uint64 nonce;
        uint256 salt;
    }

    /**
     * @notice An ENERGY delivery contract. Only `keccak256(abi.encode(trade))` (with the status in
     * its low byte) is stored; the full struct is emitted in {TradeCreated} and passed back as
     * calldata to {settle} / {reclaim}. `toleranceBps`, `penaltyBps` and `reclaimGracePeriod` are
     * the settlement terms in force when the trade was made; later admin changes do not touch
     * them. The escrow is `ceil(quantityWh * price / 1000)`; the buyer may reclaim it from
     * `deliveryEnd + reclaimGracePeriod` if the trade is still unsettled.
     */
    struct Trade {
        address seller;
        address buyer;
        bytes32 sellerMeter;
        bytes32 buyerMeter;
        uint128 quantityWh;
        uint128 price;
        uint64 deliveryStart;
        uint64 deliveryEnd;
        uint16 toleranceBps;
        uint16 penaltyBps;
        uint64 reclaimGracePeriod;
    }

    /// @notice Result of {orderStatus}.
    struct OrderStatus {
        bytes32 orderHash;
        OrderState state;
        bool listed;
        uint128 filledWh;
        uint128 remainingWh;
    }

    // ----------------------------------------------------------------- events

    /// @notice `order` was listed on-chain by its maker; it can be filled without a signature.
    event OrderListed(bytes32 indexed orderHash, address indexed maker, Order order);

    /// @notice `orderHash` was cancelled by its maker (signed or listed).
    event OrderCancelled(bytes32 indexed orderHash, address indexed maker);

    /// @notice `maker` invalidated every order made under a lower nonce.
    event NonceIncremented(address indexed maker, uint64 newNonce);

    /**
     * @notice An ENERGY trade was made and `payment` moved from the buyer into escrow.
     * The order hash of a taker's side (not an order) is zero.
     */
    event TradeCreated(
        uint256 indexed tradeId,
        bytes32 indexed sellOrderHash,
        bytes32 indexed buyOrderHash,
        Trade trade,
        uint256 payment
    );

    /// @notice A REC swap: `quantityWh` of certificate `certificateId` to the buyer, `payment` to the seller.
    event CertificatesTraded(
        uint256 indexed tradeId,
        bytes32 indexed sellOrderHash,
        bytes32 indexed buyOrderHash,
        address seller,
        address buyer,
        uint256 certificateId,
        uint128 quantityWh,
        uint128 price,
        uint256 payment
    );

    /**
     * @notice Trade `tradeId` was settled. `sellerPayout` (the gross, ceil(delivered * price / 1000))
     * was credited to the seller and `buyerRefund` (escrow - sellerPayout) to the buyer; `penalty`
     * moved from the seller's balance to the buyer's, and the seller's collateral
     * ({collateralFor} under the trade's terms) was unlocked. Seller net: sellerPayout - penalty.
     */
    event TradeSettled(
        uint256 indexed tradeId,
        uint64 deliveredWh,
        uint256 sellerPayout,
        uint256 penalty,
        uint256 buyerRefund
    );

    /// @notice Trade `tradeId` was not settled in time; its escrow was credited back to `buyer`
    /// and the seller's collateral unlocked.
    event TradeReclaimed(uint256 indexed tradeId, address indexed buyer, uint256 refund);

    /// @notice `account` withdrew `amount` of its free market balance.
    event Withdrawn(address indexed account, uint256 amount);

    /// @notice `account` moved `amount` of payment token into its market balance.
    event Deposited(address indexed account, uint256 amount);

    /// @notice The settlement terms applied to new trades changed.
    event SettlementParametersUpdated(
        uint16 oldToleranceBps,
        uint16 newToleranceBps,
        uint16 oldPenaltyBps,
        uint16 newPenaltyBps
    );

    /// @notice The reclaim grace period recorded in new trades changed (open trades keep theirs).
    event ReclaimGracePeriodUpdated(uint64 oldPeriod, uint64 newPeriod);

    // ----------------------------------------------------------------- errors

    error EnergyMarketOrderExpired(bytes32 orderHash, uint64 expiry);
    error EnergyMarketInvalidSignature(bytes32 orderHash, address maker);
    error EnergyMarketOrderNotListed(bytes32 orderHash);
    error EnergyMarketOrderAlreadyListed(bytes32 orderHash);
    error EnergyMarketOrderCancelled(bytes32 orderHash);
    error EnergyMarketStaleNonce(bytes32 orderHash, uint64 orderNonce, uint64 currentNonce);
    error EnergyMarketZeroQuantity(bytes32 orderHash);
    error EnergyMarketInsufficientRemaining(bytes32 orderHash, uint128 requested, uint128 remaining);
    error EnergyMarketPeriodNotAligned(uint64 deliveryStart, uint64 deliveryEnd);
    error EnergyMarketGateClosed(bytes32 orderHash, uint64 deliveryStart);
    /// @dev `account` trades ENERGY from `meterId`, whose top 20 bytes name another owner.
    error EnergyMarketNotMeterOwner(address account, bytes32 meterId);
    error EnergyMarketUnauthorizedMaker(address caller, address maker);
    error EnergyMarketSelfTrade(address maker);
    error EnergyMarketWrongSide(bytes32 orderHash, Side side);
    error EnergyMarketOrdersMismatch(bytes32 bidHash, bytes32 offerHash);
    error EnergyMarketPricesDoNotCross(uint128 bidPrice, uint128 offerPrice);
    error EnergyMarketTradeMismatch(uint256 tradeId);
    error EnergyMarketTradeAlreadyClosed(uint256 tradeId);
    error EnergyMarketSettlementTooEarly(uint256 tradeId, uint64 deliveryEnd);
    error EnergyMarketReclaimTooEarly(uint256 tradeId, uint256 deadline);
    error EnergyMarketLengthMismatch(uint256 trades, uint256 tradeIds, uint256 deliveredWh);
    error EnergyMarketNothingToWithdraw(address account);
    error EnergyMarketZeroDeposit(address account);
    error EnergyMarketInsufficientCollateral(address seller, uint256 required, uint256 available);
    error EnergyMarketInvalidSettlementParameters(uint16 toleranceBps, uint16 penaltyBps);
    error EnergyMarketGracePeriodTooShort(uint64 period, uint64 minPeriod);
    error EnergyMarketGracePeriodTooLong(uint64 period, uint64 maxPeriod);
    error EnergyMarketZeroAddress();

    // --------------------------------------------------------------- orders

    function listOrder(Order calldata order) external returns (bytes32 hash);

    function cancelOrder(Order calldata order) external;

    function incrementNonce() external returns (uint64 newNonce);

    function fillOrder(
        Order calldata order,
        bytes calldata signature,
        uint128 quantityWh,
        bytes32 takerMeterId
    ) external returns (uint256 tradeId);

    function matchOrders(
        Order calldata bid,
        bytes calldata bidSignature,
        Order calldata offer,
        bytes calldata offerSignature,
        uint128 quantityWh,
        bool bidIsResting
    ) external returns (uint256 tradeId);

    // ----------------------------------------------------------- settlement

    function settle(Trade calldata trade, uint256 tradeId, uint64 deliveredWh) external;

    function settleBatch(Trade[] calldata trades, uint256[] calldata tradeIds, uint64[] calldata deliveredWh) external;

    function reclaim(Trade calldata trade, uint256 tradeId) external;

    function deposit(uint256 amount) external;

    function withdraw() external returns (uint256 amount);

    // ---------------------------------------------------------------- admin

    function setSettlementParameters(uint16 toleranceBps, uint16 penaltyBps) external;

    function setReclaimGracePeriod(uint64 period) external;

    // ---------------------------------------------------------------- views

    function orderHash(Order calldata order) external view returns (bytes32);

    function orderStatus(Order calldata order) external view returns (OrderStatus memory);

    function filled(bytes32 hash) external view returns (uint128);

    function isListed(bytes32 hash) external view returns (bool);

    function isCancelled(bytes32 hash) external view returns (bool);

    function nonces(address maker) external view returns (uint64);

    function tradeHash(Trade calldata trade) external pure returns (bytes32);

    function tradeRecord(uint256 tradeId) external view returns (bytes32);

    function tradeStatus(uint256 tradeId) external view returns (TradeStatus);

    function lastTradeId() external view returns (uint256);

    function totalEscrowed() external view returns (uint256);

    function totalWithdrawable() external view returns (uint256);

    function withdrawable(address account) external view returns (uint256);

    function balanceOf(address account) external view returns (uint256);

    function lockedCollateral(address account) external view returns (uint256);

    function collateralFor(
        uint128 quantityWh,
        uint128 price,
        uint16 toleranceBps,
        uint16 penaltyBps
    ) external pure returns (uint256);

    function toleranceBps() external view returns (uint16);

    function penaltyBps() external view returns (uint16);

    function reclaimGracePeriod() external view returns (uint64);
}
